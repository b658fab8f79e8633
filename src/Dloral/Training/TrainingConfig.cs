using Dloral.Temporal;
using System.Text.Json;
using System.Text.Json.Serialization;
using Dloral.Training.Losses;

namespace Dloral.Training;

/// <summary>Where the model to fine-tune comes from.</summary>
public sealed class ModelSection
{
    /// <summary>"dloral": a diffusers folder + an official DLoRAL model.pkl (adapters, CFR and conv_in train);
    /// "scratch": the UNet built from the folder's unet/config.json with fresh weights, conv_in widened, fresh adapters and
    /// a fresh CFR — the whole UNet trains too. The VAE (and text encoder) always come from the folder, frozen.
    /// "compact": the project's compact model (<see cref="Pipeline.Compact.CompactDloral"/>): lossless codec, learned prompt, no
    /// VAE or text encoder; built from <see cref="Compact"/>.</summary>
    public string Source { get; set; } = "dloral";

    /// <summary>Source "compact": a folder with compact.json + unet_config.json (fresh, seeded weights) or a compact weights
    /// file (.safetensors written by CompactDloral.Save) to continue from.</summary>
    public string? Compact { get; set; }

    /// <summary>Source "compact": this many resnets per UNet block before training. More than loaded deepens the model,
    /// keeping its output unchanged (<see cref="Pipeline.Compact.CompactGrowth"/>): a larger base continues from a trained one.
    /// Fewer prunes it, dropping the resnets deepening adds (<see cref="Pipeline.Compact.CompactPruning"/>). Null: as loaded.</summary>
    public int? LayersPerBlock { get; set; }

    /// <summary>Source "compact": remove the UNet's mid block (diffusers' <c>mid_block_type: null</c>) before training, the
    /// other weights kept (<see cref="Pipeline.Compact.CompactPruning"/>). False: as loaded.</summary>
    public bool DropMidBlock { get; set; }

    /// <summary>Source "compact": widen the loaded model's UNet levels to these channel counts before training (after
    /// <see cref="LayersPerBlock"/>), each new channel a copy of an old one (<see cref="Pipeline.Compact.CompactWidening"/>):
    /// a wider base continues from a trained one. Null: as loaded.</summary>
    public long[]? BlockOutChannels { get; set; }

    /// <summary>Source "compact": switch the CFR's flow to "spynet" or "lucas_kanade" (classical, no weights) before
    /// training; the exported file records it. Null: as loaded.</summary>
    public string? CfrFlow { get; set; }

    /// <summary>Source "compact": "latents" (reference) or "frames": where the CFR warps the previous latent
    /// (<see cref="Temporal.CrossFrameRetrievalConfig.WarpFrames"/>). Null: as loaded.</summary>
    public string? CfrWarp { get; set; }

    /// <summary>Source "compact": "input" (reference) or "output": whether a window's previous latent is the previous
    /// input frame or the previous restored one (<see cref="Pipeline.DloralModel.RecurrentPrevious"/>). Null: as loaded.</summary>
    public string? Previous { get; set; }

    /// <summary>Diffusers folder (SD 2.1-base layout). "$golden/…" = the golden data folder.</summary>
    public string Diffusers { get; set; } = "$golden/tiny_sd";

    /// <summary>DLoRAL model.pkl (source "dloral").</summary>
    public string? Checkpoint { get; set; } = "$golden/checkpoint/model.pkl";

    /// <summary>"float32" or "bfloat16" (weights and activations; AdamW keeps float32 master weights).</summary>
    public string Dtype { get; set; } = "float32";

    /// <summary>Reject frames below 512² in the CFR as the reference does (turn off for small crops).</summary>
    public bool EnforceReferenceMinimumSize { get; set; }

    /// <summary>LoRA rank of fresh adapters (source "scratch").</summary>
    public int LoraRank { get; set; } = 4;
}

/// <summary>Training clips.</summary>
public sealed class DataSection
{
    /// <summary>Folder of photos ("images") or videos ("videos"). Relative paths resolve against the config file's folder.</summary>
    public string Folder { get; set; } = "../data/photos";

    public string Kind { get; set; } = "images";

    /// <summary>Square HR crop (the reference: 512). Must be a multiple of 8·scale.</summary>
    public int Crop { get; set; } = 512;

    /// <summary>Super-resolution factor (LR = HR / scale, then bicubic back up as the model input).</summary>
    public int Scale { get; set; } = 4;

    /// <summary>Frames per clip (3: windows (0,1) and (1,2)). More (with <c>model.previous</c> "output"): the losses stay on
    /// the last three, the earlier frames warm up the recurrent model without a gradient.</summary>
    public int Frames { get; set; } = 3;

    /// <summary>Degradation preset ("dloral", "light") or a JSON file.</summary>
    public string Degradation { get; set; } = "dloral";

    /// <summary>Apply the H.264/H.265 round trip of the preset (slower: one ffmpeg process per clip).</summary>
    public bool VideoCompression { get; set; } = true;

    /// <summary>Background loading.</summary>
    public int Workers { get; set; } = 1;
    public int Prefetch { get; set; } = 2;

    /// <summary>Image clips: the photo is scaled by a factor drawn from this range before cropping (smaller = sharper, cleaner
    /// content, like video frames downscaled from a camera's resolution; 1 = the photo's own pixels, grain and softness).</summary>
    public double[] PhotoScaleRange { get; set; } = [0.5, 1.0];

    /// <summary>Image clips: camera speed range in HR pixels per frame (the motion CFR and the temporal loss see).</summary>
    public double[] ShiftRange { get; set; } = [0.5, 4.0];

    /// <summary>Image clips of the flow stage: camera speed range in HR pixels per frame (larger: SPyNet must learn real video motion).</summary>
    public double[] FlowShiftRange { get; set; } = [0.0, 32.0];

    /// <summary>Fraction of files (by name hash) held out for validation.</summary>
    public double ValidationFraction { get; set; } = 0.1;
}

/// <summary>Loss settings besides the λ schedule.</summary>
public sealed class LossSection
{
    /// <summary>"resnet18" (offline ImageNet ResNet-18 features, see <see cref="PerceptualLoss"/>), "lpips" (the
    /// reference's LPIPS-VGG from user-supplied official weights, see <see cref="LpipsLoss"/>) or "none".</summary>
    public string Perceptual { get; set; } = "resnet18";

    /// <summary>For "lpips": torchvision's vgg16-397923af.pth (or a .safetensors with the same keys).</summary>
    public string? LpipsVgg { get; set; }

    /// <summary>For "lpips": the lpips package's weights/v0.1/vgg.pth (linear heads).</summary>
    public string? LpipsLin { get; set; }

    /// <summary>ResNet-18 ONNX path (default: found in the NuGet cache).</summary>
    public string? PerceptualOnnx { get; set; }

    /// <summary>Multiply the temporal mask by (1 − uncertainty map): ignore pixels the frame-difference mask flags.</summary>
    public bool TemporalUseUncertainty { get; set; }

    /// <summary>Temporal loss relative to the ground truth: penalise only the frame-to-frame change the ground truth does not
    /// have (optimum = the ground truth). False = the reference's absolute form, which a static or blurred output also minimises.</summary>
    public bool TemporalRelative { get; set; }

    /// <summary>Weight of the chroma part of the pixel (L2) loss, 1 = the reference's plain RGB MSE. Below 1 the error
    /// orthogonal to the BT.601 luma axis counts less (<see cref="Losses.ReconstructionLoss.L2(TorchSharp.torch.Tensor, TorchSharp.torch.Tensor, double)"/>):
    /// a 4:2:0 video keeps half the chroma resolution, and PSNR-Y measures luma only.</summary>
    public double L2ChromaWeight { get; set; } = 1.0;

    /// <summary>CSD teacher: null = no CSD; "model" = the diffusers folder's own unet/; or another diffusers folder.</summary>
    public string? CsdTeacher { get; set; }

    public double CsdGuidance { get; set; } = 7.5;
    public double CsdMinStepRatio { get; set; } = 0.02;
    public double CsdMaxStepRatio { get; set; } = 0.5;
}

/// <summary>Optimizer settings.</summary>
public sealed class OptimizerSection
{
    public double LearningRate { get; set; } = 5e-5;
    public double Beta1 { get; set; } = 0.9;
    public double Beta2 { get; set; } = 0.999;
    public double WeightDecay { get; set; } = 1e-2;
    public double Epsilon { get; set; } = 1e-8;
    public double MaxGradNorm { get; set; } = 1.0;
    public int GradientAccumulation { get; set; } = 1;

    /// <summary>Learning rate of the base stage (a from-scratch UNet wants more than adapters do); null = <see cref="LearningRate"/>.</summary>
    public double? BaseLearningRate { get; set; }

    /// <summary>Fraction of the base stage at its end over which its learning rate falls linearly to a tenth (0 = constant).</summary>
    public double BaseDecayFraction { get; set; }

    /// <summary>Learning rate of the flow stage (SPyNet from scratch); null = <see cref="LearningRate"/>.</summary>
    public double? FlowLearningRate { get; set; }

    /// <summary>Decay of the exponential moving average of the trained weights that validation and export use (e.g. 0.999);
    /// 0 = off (validate and export the weights as trained). See <see cref="WeightAverage"/>.</summary>
    public double EmaDecay { get; set; }

    /// <summary>The learning rate of a stage.</summary>
    public double LearningRateOf(TrainingStage stage) => stage switch
    {
        TrainingStage.Base => BaseLearningRate ?? LearningRate,
        TrainingStage.Flow => FlowLearningRate ?? LearningRate,
        _ => LearningRate,
    };
}

/// <summary>
/// A training run's configuration (JSON, snake_case keys, comments allowed; unknown keys are errors). Paths starting
/// with <c>$golden</c> resolve to the golden data folder ($DLORAL_GOLDEN, else <c>&lt;repo&gt;/../shared/golden</c> found
/// above the config file); other relative paths resolve against the config file's folder.
/// </summary>
public sealed class TrainingConfig
{
    public ModelSection Model { get; set; } = new();
    public DataSection Data { get; set; } = new();
    public LossSection Losses { get; set; } = new();
    public OptimizerSection Optimizer { get; set; } = new();
    public StageScheduleOptions Schedule { get; set; } = new();

    /// <summary>Text prompt for the model (the reference uses RAM tags + a positive prompt; no tagger here).</summary>
    public string Prompt { get; set; } = "";

    /// <summary>Negative prompt of the CSD teacher's unconditional branch (the reference's).</summary>
    public string NegativePrompt { get; set; } =
        "painting, oil painting, illustration, drawing, art, sketch, oil painting, cartoon, CG Style, 3D render, unreal engine, blurring, dirty, messy, worst quality, low quality, frames, watermark, signature, jpeg artifacts, deformed, lowres, over-smooth";

    /// <summary>Total optimizer steps.</summary>
    public long Steps { get; set; } = 30000;

    public long Seed { get; set; } = 123;

    /// <summary>Checkpoint every N steps (0 = only at exit).</summary>
    public long CheckpointEvery { get; set; } = 500;

    /// <summary>Validate every N steps (0 = never; also at exit when &gt; 0).</summary>
    public long ValidateEvery { get; set; } = 500;

    /// <summary>Console progress every N steps.</summary>
    public long LogEvery { get; set; } = 10;

    /// <summary>Output folder (checkpoints/, train_log.jsonl, validation/).</summary>
    public string Output { get; set; } = "runs/dloral";

    /// <summary>Torch threads (null = TorchRuntime default).</summary>
    public int? Threads { get; set; }

    /// <summary>The folder relative paths resolve against (the config file's folder; not serialised).</summary>
    [JsonIgnore]
    public string BaseDirectory { get; set; } = Directory.GetCurrentDirectory();

    internal static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        WriteIndented = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>Reads and validates a config file.</summary>
    public static TrainingConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"training config '{path}' not found", path);
        var config = Parse(File.ReadAllText(path), path);
        config.BaseDirectory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        return config;
    }

    /// <summary>Parses JSON (<paramref name="source"/> names it in errors) and validates.</summary>
    public static TrainingConfig Parse(string json, string source = "<config>")
    {
        TrainingConfig? config;
        try
        {
            config = JsonSerializer.Deserialize<TrainingConfig>(json, JsonOptions);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: invalid training config: {e.Message}", e);
        }
        if (config is null) throw new InvalidDataException($"{source}: empty training config");
        config.Validate(source);
        return config;
    }

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>A deep copy (through JSON) keeping <see cref="BaseDirectory"/>.</summary>
    public TrainingConfig Clone()
    {
        var c = JsonSerializer.Deserialize<TrainingConfig>(ToJson(), JsonOptions)!;
        c.BaseDirectory = BaseDirectory;
        return c;
    }

    /// <summary>Throws <see cref="InvalidDataException"/> naming the first bad value.</summary>
    public void Validate(string source = "<config>")
    {
        void Fail(string msg) => throw new InvalidDataException($"{source}: {msg}");
        if (Model.Source is not ("dloral" or "scratch" or "compact")) Fail($"model.source '{Model.Source}': use 'dloral', 'scratch' or 'compact'");
        if (Model.Source == "compact" && string.IsNullOrEmpty(Model.Compact)) Fail("model.compact (a folder with compact.json, or a compact weights file) is required for source 'compact'");
        if (Model.LayersPerBlock is not null && Model.Source != "compact") Fail("model.layers_per_block deepens or prunes a compact model; it needs source 'compact'");
        if (Model.DropMidBlock && Model.Source != "compact") Fail("model.drop_mid_block prunes a compact model; it needs source 'compact'");
        if (Model.LayersPerBlock is < 1) Fail("model.layers_per_block must be at least 1");
        if (Model.BlockOutChannels is not null && Model.Source != "compact") Fail("model.block_out_channels widens a compact model; it needs source 'compact'");
        if (Model.BlockOutChannels is { } widths && (widths.Length == 0 || widths.Any(c => c < 1))) Fail("model.block_out_channels must list a positive channel count per UNet level");
        if (Model.CfrFlow is not null && Model.Source != "compact") Fail("model.cfr_flow switches a compact model's flow; it needs source 'compact'");
        if ((Model.CfrWarp ?? Model.Previous) is not null && Model.Source != "compact") Fail("model.cfr_warp / model.previous configure a compact model; they need source 'compact'");
        if (Model.CfrWarp is not (null or "latents" or "frames")) Fail($"model.cfr_warp '{Model.CfrWarp}' is not latents or frames");
        if (Model.Previous is not (null or "input" or "output")) Fail($"model.previous '{Model.Previous}' is not input or output");
        if (Model.CfrFlow is not null && CrossFrameFlowNames.Parse(Model.CfrFlow) is null) Fail($"model.cfr_flow '{Model.CfrFlow}' is not spynet or lucas_kanade");
        if (Model.Source == "compact" && Losses.CsdTeacher is not null) Fail("losses.csd_teacher: the compact model has no text-conditioned SD teacher; leave it null");
        if (Model.Source == "dloral" && (Schedule.BaseSteps > 0 || Schedule.FlowSteps > 0)) Fail("schedule.base_steps / flow_steps are for models trained from scratch ('scratch', 'compact'), not a pretrained DLoRAL");
        if (Schedule.FlowSteps > 0 && Model.CfrFlow == "lucas_kanade") Fail("schedule.flow_steps trains SPyNet; model.cfr_flow 'lucas_kanade' has no flow weights to train");
        if (Schedule.FlowSteps > 0 && Data.Kind != "images") Fail("schedule.flow_steps needs data.kind 'images': the flow stage learns the exact flow of the synthetic camera motion");
        if (Optimizer.BaseDecayFraction is < 0 or > 1) Fail("optimizer.base_decay_fraction must be in [0, 1]");
        if (Optimizer.EmaDecay is < 0 or >= 1) Fail("optimizer.ema_decay must be in [0, 1) (0 = no weight average)");
        if (Optimizer.BaseLearningRate is <= 0 || Optimizer.FlowLearningRate is <= 0) Fail("optimizer.base_learning_rate / flow_learning_rate must be > 0");
        if (Model.Source == "dloral" && string.IsNullOrEmpty(Model.Checkpoint)) Fail("model.checkpoint is required for source 'dloral'");
        if (Model.Dtype is not ("float32" or "bfloat16")) Fail($"model.dtype '{Model.Dtype}': use 'float32' or 'bfloat16'");
        if (Data.Kind is not ("images" or "videos")) Fail($"data.kind '{Data.Kind}': use 'images' or 'videos'");
        if (Data.Scale < 1 || Data.Crop < 8 * Data.Scale || Data.Crop % (8 * Data.Scale) != 0)
            Fail($"data.crop {Data.Crop} must be a positive multiple of 8·scale = {8 * Data.Scale}");
        if (Data.Frames < 3) Fail($"data.frames {Data.Frames}: DLoRAL trains on 3-frame clips (windows (0,1) and (1,2))");
        if (Data.Frames > 3 && Model.Previous != "output")
            Fail($"data.frames {Data.Frames}: frames beyond 3 only warm up a recurrent model; set model.previous \"output\" or use 3");
        if (Data.ShiftRange is not [var s0, var s1] || s0 < 0 || s1 < s0 || Data.FlowShiftRange is not [var f0, var f1] || f0 < 0 || f1 < f0)
            Fail("data.shift_range and data.flow_shift_range must be [min, max] with 0 <= min <= max (HR pixels per frame)");
        if (Data.PhotoScaleRange is not [var p0, var p1] || p0 <= 0 || p1 < p0 || p1 > 1)
            Fail("data.photo_scale_range must be [min, max] with 0 < min <= max <= 1");
        if (Losses.Perceptual is not ("resnet18" or "lpips" or "none")) Fail($"losses.perceptual '{Losses.Perceptual}': use 'resnet18', 'lpips' or 'none'");
        if (Losses.Perceptual == "lpips" && (string.IsNullOrEmpty(Losses.LpipsVgg) || string.IsNullOrEmpty(Losses.LpipsLin)))
            Fail("losses.perceptual 'lpips' needs losses.lpips_vgg (vgg16-397923af.pth) and losses.lpips_lin (lpips v0.1 vgg.pth)");
        if (!double.IsFinite(Losses.L2ChromaWeight) || Losses.L2ChromaWeight < 0) Fail($"losses.l2_chroma_weight {Losses.L2ChromaWeight}: use a number >= 0 (1 = plain RGB MSE)");
        if (Optimizer.GradientAccumulation < 1) Fail("optimizer.gradient_accumulation must be >= 1");
        if (Optimizer.LearningRate <= 0) Fail("optimizer.learning_rate must be > 0");
        if (Steps < 0) Fail("steps must be >= 0");
        try { Schedule.Validate(); } catch (ArgumentException e) { Fail(e.Message); }
    }

    /// <summary>Resolves a configured path ($golden prefix, or relative to <see cref="BaseDirectory"/>).</summary>
    public string ResolvePath(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        const string golden = "$golden";
        if (path.StartsWith(golden, StringComparison.Ordinal))
        {
            var rest = path[golden.Length..].TrimStart('/', '\\');
            return Path.Combine(GoldenRoot(BaseDirectory), rest);
        }
        return Path.GetFullPath(Path.IsPathRooted(path) ? path : Path.Combine(BaseDirectory, path));
    }

    /// <summary>$DLORAL_GOLDEN, else the first <c>&lt;ancestor&gt;/../shared/golden</c> above <paramref name="start"/>.</summary>
    public static string GoldenRoot(string start)
    {
        var env = Environment.GetEnvironmentVariable("DLORAL_GOLDEN");
        if (!string.IsNullOrEmpty(env)) return Path.GetFullPath(env);
        for (var d = new DirectoryInfo(Path.GetFullPath(start)); d is not null; d = d.Parent)
        {
            var candidate = Path.GetFullPath(Path.Combine(d.FullName, "..", "shared", "golden"));
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException($"golden data folder not found above '{start}': set DLORAL_GOLDEN");
    }
}
