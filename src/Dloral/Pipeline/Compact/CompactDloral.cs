using Dloral.Checkpoints;
using Dloral.Diffusion;
using Dloral.Lora;
using Dloral.Nn;
using Dloral.Pipeline.Codecs;
using Dloral.Temporal;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Dloral.Pipeline.Compact;

/// <summary>
/// The compact DLoRAL network the project trains and ships: a <see cref="DloralModel"/> (same code path as full
/// DLoRAL) with a <see cref="PixelUnshuffleCodec"/>, a small <see cref="UNet2DCondition"/> built from models/compact/
/// unet_config.json with conv_in widened and the six C-/D-LoRA adapters, a small <see cref="CrossFrameRetrieval"/>,
/// and a learned 1-token "empty prompt" embedding instead of a text encoder. Weights live in ONE safetensors file whose
/// <c>__metadata__</c> holds both configs (<see cref="Save"/>, <see cref="Load"/>).
/// </summary>
public sealed class CompactDloral : IDisposable
{
    /// <summary>Metadata keys of the weights file.</summary>
    public const string MetaFormat = "dloral.format", MetaCompact = "dloral.compact_json", MetaUnet = "dloral.unet_config_json";

    /// <summary>File name of the shipped weights inside the model folder (models/compact/).</summary>
    public const string WeightsFileName = "dloral_compact.safetensors";

    /// <summary>
    /// The models/compact folder (the one holding compact.json): searched upward from <paramref name="start"/> (default: the
    /// application's base directory), so it is found from a build output inside the repository; null if none.
    /// </summary>
    public static string? FindModelFolder(string? start = null)
    {
        for (var dir = new DirectoryInfo(start ?? AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "models", "compact");
            if (File.Exists(Path.Combine(candidate, "compact.json"))) return candidate;
        }
        return null;
    }

    /// <summary>Tensor name of the learned prompt embedding.</summary>
    public const string PromptName = "prompt_embeds";

    private CompactDloral(CompactDloralConfig config, DloralModel model, Parameter prompt)
    {
        Config = config;
        Model = model;
        PromptEmbeds = prompt;
    }

    public CompactDloralConfig Config { get; private set; }

    /// <summary>
    /// Changes how the model uses the previous frame and records it in the config <see cref="Save"/> writes (null: keep):
    /// the CFR's flow (cfr.flow), where it warps (cfr.warp), and whether the previous latent is the previous restored
    /// frame (previous). E.g. to train a model that was trained with SPyNet on Lucas–Kanade flow. Weights are unchanged.
    /// </summary>
    public void Reconfigure(CrossFrameFlow? flow = null, bool? warpFrames = null, bool? recurrentPrevious = null)
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(Config.CompactJson)!.AsObject();
        var cfr = json["cfr"]!.AsObject();
        if (flow is { } fl) cfr["flow"] = fl.ToJsonName();
        if (warpFrames is { } wf) cfr["warp"] = wf ? "frames" : "latents";
        if (recurrentPrevious is { } rp) json["previous"] = rp ? "output" : "input";
        Config = CompactDloralConfig.Parse(json.ToJsonString(new() { WriteIndented = true }), Config.UnetJson, "compact model");
        Model.Cfr.UseFlow(Config.Cfr.Flow);
        Model.Cfr.UseFrameWarp(Config.Cfr.WarpFrames);
        Model.RecurrentPrevious = Config.RecurrentPrevious;
    }

    /// <summary>The DLoRAL model (codec, UNet, CFR, adapters); use its public API (Step, DenoiseWindow, …).</summary>
    public DloralModel Model { get; }

    /// <summary>[1,tokens,width] learned "empty prompt" the UNet's cross-attention sees (a parameter for trainers).</summary>
    public Parameter PromptEmbeds { get; }

    /// <summary>Builds the model from models/compact-style files with deterministic random init (seed from the config).</summary>
    public static CompactDloral Build(string folder, ModelOptions? options = null) => Build(CompactDloralConfig.LoadFolder(folder), options);

    /// <summary>Builds the model with deterministic random init (private generators: UNet and CFR from Seed, LoRA A from Seed+1, prompt from Seed+2).</summary>
    public static CompactDloral Build(CompactDloralConfig config, ModelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var o = options ?? ModelOptions.Default;
        UNet2DCondition? unet = null;
        CrossFrameRetrieval? cfr = null;
        PixelUnshuffleCodec? codec = null;
        try
        {
            unet = new UNet2DCondition(config.Unet, new ModelOptions(o.Device, ScalarType.Float32) { ChannelsLast = o.ChannelsLast });
            int c = (int)config.Unet.InChannels;
            DloralUnet.WidenConvIn(unet, 2 * c);
            cfr = new CrossFrameRetrieval(config.Cfr) { EnforceReferenceMinimumSize = false };
            // Re-initialised from a private generator: the global one is shared with whatever else runs in the process.
            using (var g = new Generator((ulong)config.Seed)) { Initialize(unet, g); Initialize(cfr, g); }
            // The untrained model is the identity on its input (ε̂ = 0 → z − ε̂ = z, the bicubic frame with a lossless codec),
            // so training starts at bicubic quality and only has to learn the correction; SPyNet starts from zero flow.
            using (no_grad())
            {
                foreach (var (name, p) in unet.named_parameters())
                    if (name.StartsWith("conv_out.", StringComparison.Ordinal) && !name.Contains("lora_", StringComparison.Ordinal)) p.zero_();
                foreach (var (name, p) in cfr.SpyNet.named_parameters())
                    if (SpyNet.IsLastLayerOfLevel(name)) p.zero_();
            }
            var targets = DloralAdapters.TargetsOf(unet);
            using (var g = new Generator((ulong)(config.Seed + 1)))
                DloralAdapters.Inject(unet, targets, config.RankQuality, config.RankConsistency, config.LoraAlpha, g);
            codec = new PixelUnshuffleCodec(config.CodecFactor, config.CodecMixing, config.CodecScaling);
            Tensor prompt;
            using (var g = new Generator((ulong)(config.Seed + 2)))
                prompt = randn([1, config.PromptTokens, config.PromptWidth], generator: g);
            if (o.Device is { } device) { unet.to(device); cfr.to(device); codec.to(device); prompt = prompt.to(device); }
            if (o.DType != ScalarType.Float32) { unet.to(o.DType); prompt = prompt.to(o.DType); } // codec and CFR stay float32: see ToDType
            var model = new DloralModel(codec, unet, cfr) { RecurrentPrevious = config.RecurrentPrevious };
            // A Parameter (frozen until a trainer turns requires_grad on): trainers treat it like any other weight.
            return new CompactDloral(config, model, new Parameter(prompt.DetachFromDisposeScope(), requires_grad: false));
        }
        catch
        {
            unet?.Dispose();
            cfr?.Dispose();
            codec?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Deterministic init in named_parameters order: weights U(−1/√fan_in, 1/√fan_in) (PyTorch's default bound for conv
    /// and linear layers), norm weights 1, biases 0.
    /// </summary>
    private static void Initialize(nn.Module module, Generator generator)
    {
        using var noGrad = no_grad();
        foreach (var (name, p) in module.named_parameters())
        {
            if (p.dim() >= 2)
            {
                double bound = 1.0 / Math.Sqrt(p.numel() / p.shape[0]);
                p.copy_(rand(p.shape, generator: generator, dtype: ScalarType.Float32).mul_(2 * bound).sub_(bound));
            }
            else if (name.EndsWith(".weight", StringComparison.Ordinal) && name.Contains("norm", StringComparison.Ordinal)) p.fill_(1.0);
            else p.zero_();
        }
    }

    /// <summary>
    /// All trainable weights by name: <c>unet.*</c> (base + the six adapters, unmerged), <c>cfr.*</c> and
    /// <see cref="PromptName"/>. The codec is fixed and rebuilt from the config.
    /// </summary>
    public IEnumerable<KeyValuePair<string, Tensor>> NamedWeights()
    {
        foreach (var (name, t) in Model.Unet.state_dict()) yield return new("unet." + name, t);
        foreach (var (name, t) in Model.Cfr.state_dict()) yield return new("cfr." + name, t);
        yield return new(PromptName, PromptEmbeds);
    }

    /// <summary>
    /// Writes all weights (float32, or <paramref name="dtype"/>) and both configs (in <c>__metadata__</c>) to one safetensors
    /// file. Adapters are stored unmerged (a merged model is unmerged for the save and merged again).
    /// </summary>
    public void Save(string path, ScalarType dtype = ScalarType.Float32)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        bool merged = Model.Adapters.MergeAdapters;
        if (merged) LoraModel.Unmerge(Model.Unet);
        try
        {
            using var scope = NewDisposeScope();
            var tensors = NamedWeights().Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.detach().to(dtype).cpu())).ToList();
            var meta = new Dictionary<string, string>
            {
                [MetaFormat] = CompactDloralConfig.Format,
                [MetaCompact] = Config.CompactJson,
                [MetaUnet] = Config.UnetJson,
            };
            var dir = Path.GetDirectoryName(Path.GetFullPath(path));
            if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
            SafeTensorsWriter.Save(path, tensors, meta);
        }
        finally
        {
            if (merged) LoraModel.Merge(Model.Unet);
        }
    }

    /// <summary>Loads a file written by <see cref="Save"/>: configs from its metadata, every weight strictly by name.</summary>
    public static CompactDloral Load(string path, ModelOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var file = SafeTensorsFile.Open(path);
        if (!file.Metadata.TryGetValue(MetaFormat, out var format) || format != CompactDloralConfig.Format)
            throw new InvalidDataException($"{path}: not a compact DLoRAL weights file (metadata {MetaFormat} = '{format}', expected '{CompactDloralConfig.Format}')");
        if (!file.Metadata.TryGetValue(MetaCompact, out var compactJson) || !file.Metadata.TryGetValue(MetaUnet, out var unetJson))
            throw new InvalidDataException($"{path}: metadata lacks {MetaCompact} or {MetaUnet}");
        var config = CompactDloralConfig.Parse(compactJson, unetJson, path);
        var o = options ?? ModelOptions.Default;
        var model = Build(config, new ModelOptions(o.Device, ScalarType.Float32) { ChannelsLast = o.ChannelsLast });
        try
        {
            var unexpected = file.Entries.Keys.Where(k => !k.StartsWith("unet.", StringComparison.Ordinal) && !k.StartsWith("cfr.", StringComparison.Ordinal) && k != PromptName).ToList();
            if (unexpected.Count > 0) throw new InvalidDataException($"{path}: unexpected tensors {string.Join(", ", unexpected.Take(10))}");
            StateDictLoader.Load(model.Model.Unet, file, prefix: "unet.");
            var cfrTensors = file.Entries.Keys.Where(k => k.StartsWith("cfr.", StringComparison.Ordinal)).ToList();
            using (var scope = NewDisposeScope())
                model.Model.Cfr.LoadStateDict(cfrTensors.ToDictionary(k => k["cfr.".Length..], k => file.Load(k)), ignoreUnusedSubmodules: false, source: path);
            if (!file.Contains(PromptName)) throw new InvalidDataException($"{path}: missing tensor {PromptName}");
            using (no_grad()) file.ReadInto(PromptName, model.PromptEmbeds);
            if (o.DType != ScalarType.Float32) model.ToDType(o.DType);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Sets the UNet (and the prompt it reads) to a dtype, e.g. bfloat16 for CPU inference. The codec and CFR stay in
    /// float32: they cost ~15 % of a frame, and in bfloat16 they would round the latents — the skip path of z − ε̂ and the
    /// lossless codec's output — to bfloat16's 8-bit mantissa (~0.4 % relative: about one 8-bit grey level on bright pixels).
    /// </summary>
    public void ToDType(ScalarType dtype)
    {
        Model.Unet.to(dtype);
        using (no_grad())
        {
            var p = PromptEmbeds.to(dtype);
            _promptOverride?.Dispose();
            _promptOverride = p.DetachFromDisposeScope();
        }
    }

    private Tensor? _promptOverride;

    /// <summary>The prompt in the model's current dtype.</summary>
    public Tensor Prompt => _promptOverride ?? PromptEmbeds;

    /// <summary>
    /// LR frames [n,2,3,h,w] in [−1,1] (previous, current) → bicubic ×<see cref="CompactDloralConfig.Scale"/> (the
    /// DLoRAL input), the uncertainty map of the upscaled window, and the one-step result (its OutputImage is
    /// [n,3,h·scale,w·scale]). h·scale and w·scale must be multiples of the codec factor.
    /// </summary>
    public DloralStepResult Upscale(Tensor lrWindow)
    {
        ArgumentNullException.ThrowIfNull(lrWindow);
        if (lrWindow.dim() != 5 || lrWindow.shape[1] != 2 || lrWindow.shape[2] != 3)
            throw new ArgumentException($"expected LR frames [n,2,3,h,w], got [{string.Join(",", lrWindow.shape)}]", nameof(lrWindow));
        using var scope = NewDisposeScope();
        long n = lrWindow.shape[0], h = lrWindow.shape[3] * Config.Scale, w = lrWindow.shape[4] * Config.Scale;
        var hr = F.interpolate(lrWindow.reshape(n * 2, 3, lrWindow.shape[3], lrWindow.shape[4]).to_type(ScalarType.Float32), size: [h, w],
                               mode: InterpolationMode.Bicubic, align_corners: false).clamp_(-1.0, 1.0).view(n, 2, 3, h, w);
        var uncertainty = UncertaintyOf(hr);
        var result = Model.Step(hr, uncertainty, Prompt);
        return new DloralStepResult(result.OutputImage.MoveToOuterDisposeScope(), result.XDenoised.MoveToOuterDisposeScope(),
            result.UnetInput.MoveToOuterDisposeScope(), result.ModelPred.MoveToOuterDisposeScope(), result.Latents.MoveToOuterDisposeScope(),
            new CrossFrameRetrievalOutput(result.Retrieval.FusedFeatures.MoveToOuterDisposeScope(), result.Retrieval.WeightMap.MoveToOuterDisposeScope(),
                                          result.Retrieval.AlignedFeatures.MoveToOuterDisposeScope()),
            result.WeightMap.MoveToOuterDisposeScope());
    }

    /// <summary>The reference uncertainty map of a window [n,2,3,H,W] in [−1,1] → [n,1,1,H/f,W/f] (resized if f ≠ 8).</summary>
    public Tensor UncertaintyOf(Tensor window)
    {
        using var scope = NewDisposeScope();
        long n = window.shape[0], h = window.shape[3], w = window.shape[4];
        int f = Model.Codec.DownscaleFactor;
        var maps = new List<Tensor>();
        for (long i = 0; i < n; i++)
        {
            var u8 = window.select(0, i).add(1.0).mul(127.5).round().clamp(0, 255).to_type(ScalarType.Byte);
            var m = UncertaintyMap.FromRgbFrames(u8).to_type(ScalarType.Float32); // [1,1,1,H/8,W/8]
            maps.Add(UncertaintyMap.ToLatentGrid(m, h / f, w / f));
        }
        return cat(maps, 0).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        Model.Dispose();
        PromptEmbeds.Dispose();
        _promptOverride?.Dispose();
    }
}
