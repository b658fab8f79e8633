using Dloral.Checkpoints;
using Dloral.Diffusion;
using Dloral.Lora;
using Dloral.Nn;
using Dloral.Pipeline;
using Dloral.Pipeline.Codecs;
using Dloral.Pipeline.Compact;
using Dloral.Temporal;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Training;

/// <summary>A named parameter of the trained model ("unet.…" or "cfr.…").</summary>
public sealed record NamedParameter(string Name, Parameter Param);

/// <summary>
/// The DLoRAL model being trained and its parameter groups, as the reference's optimizer groups: D-LoRA ("quality"),
/// C-LoRA ("consistency"), CFR without SPyNet ("cfr_main_net") and conv_in's own weight and bias ("base"); for
/// from-scratch models also every other UNet weight ("full"). <see cref="SetStage"/> switches requires_grad.
/// </summary>
public sealed class TrainingModel : IDisposable
{
    private TrainingModel(DloralModel model, bool fullUnet, CompactDloral? compact = null)
    {
        Model = model;
        Compact = compact;
        FullUnet = fullUnet;
        FromScratch = fullUnet || compact is not null;
        var unetParams = model.Unet.named_parameters().Select(p => new NamedParameter("unet." + p.name, p.parameter)).ToList();
        Quality = unetParams.Where(p => p.Name.Contains("lora_", StringComparison.Ordinal) && p.Name.Contains("quality", StringComparison.Ordinal)).ToList();
        Consistency = unetParams.Where(p => p.Name.Contains("lora_", StringComparison.Ordinal) && p.Name.Contains("consistency", StringComparison.Ordinal)).ToList();
        ConvIn = unetParams.Where(p => p.Name.StartsWith("unet.conv_in.", StringComparison.Ordinal) && !p.Name.Contains("lora_", StringComparison.Ordinal)).ToList();
        Cfr = model.Cfr.named_parameters().Where(p => !p.name.StartsWith("spynet.", StringComparison.Ordinal))
            .Select(p => new NamedParameter("cfr." + p.name, p.parameter)).ToList();
        var grouped = Quality.Concat(Consistency).Concat(ConvIn).Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        Full = FromScratch ? unetParams.Where(p => !grouped.Contains(p.Name)).ToList() : [];
        if (compact is not null) Full = [.. Full, new NamedParameter(CompactDloral.PromptName, compact.PromptEmbeds)];
        // SPyNet trains only in the flow stage of from-scratch models; a pretrained one (the reference's) stays frozen.
        Flow = FromScratch ? model.Cfr.SpyNet.named_parameters().Select(p => new NamedParameter("cfr.spynet." + p.name, p.parameter)).ToList() : [];
        if (Quality.Count == 0 || Consistency.Count == 0 || ConvIn.Count == 0 || Cfr.Count == 0)
            throw new InvalidOperationException($"training model: empty parameter group (quality {Quality.Count}, consistency {Consistency.Count}, conv_in {ConvIn.Count}, cfr {Cfr.Count})");
        All = model.Unet.named_parameters().Select(p => new NamedParameter("unet." + p.name, p.parameter))
            .Concat(model.Cfr.named_parameters().Select(p => new NamedParameter("cfr." + p.name, p.parameter)))
            .Concat(model.Codec is VaeLatentCodec vae ? vae.Vae.named_parameters().Select(p => new NamedParameter("vae." + p.name, p.parameter)) : [])
            .Concat(compact is not null ? [new NamedParameter(CompactDloral.PromptName, compact.PromptEmbeds)] : Array.Empty<NamedParameter>()).ToList();
        SetStage(TrainingStage.Consistency);
    }

    public DloralModel Model { get; }

    /// <summary>The compact model (source "compact"): its learned prompt and its one-file format; null otherwise.</summary>
    public CompactDloral? Compact { get; }

    /// <summary>True for source "scratch": every UNet weight trains in every stage.</summary>
    public bool FullUnet { get; }

    /// <summary>True for models without a pretrained prior ("scratch", "compact"): base and SPyNet weights are trained
    /// (and checkpointed). The compact model trains its base only in the base stage, then freezes it as DLoRAL freezes SD.</summary>
    public bool FromScratch { get; }

    public IReadOnlyList<NamedParameter> Quality { get; }
    public IReadOnlyList<NamedParameter> Consistency { get; }
    public IReadOnlyList<NamedParameter> ConvIn { get; }
    public IReadOnlyList<NamedParameter> Cfr { get; }
    public IReadOnlyList<NamedParameter> Full { get; }

    /// <summary>SPyNet's parameters, trained in the flow stage of from-scratch models (empty otherwise).</summary>
    public IReadOnlyList<NamedParameter> Flow { get; }

    /// <summary>Every parameter of the UNet, the CFR and the VAE.</summary>
    public IReadOnlyList<NamedParameter> All { get; }

    /// <summary>The stage currently set.</summary>
    public TrainingStage Stage { get; private set; }

    /// <summary>Everything that is ever trained (saved in checkpoints): all groups.</summary>
    public IEnumerable<NamedParameter> Checkpointed => Quality.Concat(Consistency).Concat(ConvIn).Concat(Cfr).Concat(Full).Concat(Flow);

    /// <summary>The parameters that train in <paramref name="stage"/>.</summary>
    public IReadOnlyList<NamedParameter> TrainableIn(TrainingStage stage) => stage switch
    {
        TrainingStage.Base => [.. Full, .. ConvIn],
        TrainingStage.Flow => Flow,
        TrainingStage.Consistency => [.. Consistency, .. Cfr, .. ConvIn, .. (FullUnet ? Full : [])],
        _ => [.. Quality, .. ConvIn, .. (FullUnet ? Full : [])],
    };

    /// <summary>Sets requires_grad: true exactly for <see cref="TrainableIn"/>(stage), false for everything else (SPyNet, VAE included).</summary>
    public void SetStage(TrainingStage stage)
    {
        var on = TrainableIn(stage).Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var p in All) p.Param.requires_grad = on.Contains(p.Name);
        Stage = stage;
    }

    /// <summary>Drops all gradients (set to none).</summary>
    public void ZeroGrad()
    {
        foreach (var p in All)
        {
            using var g = p.Param.grad; // the getter returns a fresh handle
            if (g is not null) p.Param.grad = null;
        }
    }

    /// <summary>
    /// Builds the model a config describes: the official layout from a diffusers folder + model.pkl, or a fresh
    /// (from-scratch) one whose adapters/CFR are drawn from <paramref name="seed"/>. All six adapters are active (the
    /// reference's training forward: <c>set_adapter(all six)</c>).
    /// </summary>
    public static TrainingModel Create(TrainingConfig config, Device? device = null, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(config);
        var dtype = config.Model.Dtype == "bfloat16" ? ScalarType.BFloat16 : ScalarType.Float32;
        var options = new ModelOptions(device, dtype);
        if (config.Model.Source == "compact")
        {
            var path = config.ResolvePath(config.Model.Compact!);
            var compact = Directory.Exists(path) ? CompactDloral.Build(path, options) : CompactDloral.Load(path, options);
            bool dropMid = config.Model.DropMidBlock && compact.Config.Unet.MidBlockType is not null;
            int? fewer = config.Model.LayersPerBlock is int target && compact.Config.Unet.LayersPerBlock.Any(x => x > target) ? target : null;
            if (fewer is not null || dropMid)
            {
                using var loaded = compact;
                compact = CompactPruning.Prune(loaded, fewer, dropMid);
                if (options.DType != ScalarType.Float32) compact.ToDType(options.DType);
            }
            if (config.Model.LayersPerBlock is int layers && compact.Config.Unet.LayersPerBlock.Any(l => l != layers))
            {
                using var loaded = compact;
                compact = CompactGrowth.Deepen(loaded, layers);
                if (options.DType != ScalarType.Float32) compact.ToDType(options.DType);
            }
            if (config.Model.BlockOutChannels is { } widths && !compact.Config.Unet.BlockOutChannels.SequenceEqual(widths))
            {
                using var loaded = compact;
                compact = CompactWidening.Widen(loaded, widths);
                if (options.DType != ScalarType.Float32) compact.ToDType(options.DType);
            }
            compact.Reconfigure(CrossFrameFlowNames.Parse(config.Model.CfrFlow),
                                config.Model.CfrWarp is { } warp ? warp == "frames" : null,
                                config.Model.Previous is { } previous ? previous == "output" : null);
            // All six adapters active, as the reference's training forward.
            compact.Model.Configure(new DloralAdapterOptions(DloralStage.Full));
            return new TrainingModel(compact.Model, fullUnet: false, compact);
        }
        var folder = DiffusersFolder.Open(config.ResolvePath(config.Model.Diffusers));
        DloralModel model;
        if (config.Model.Source == "dloral")
        {
            using var checkpoint = DloralCheckpoint.Load(config.ResolvePath(config.Model.Checkpoint!));
            model = DloralModelLoader.Load(folder, checkpoint, options, new DloralAdapterOptions(DloralStage.Full));
        }
        else
        {
            model = CreateFromScratch(folder, options, config.Model.LoraRank, seed);
        }
        model.Cfr.EnforceReferenceMinimumSize = config.Model.EnforceReferenceMinimumSize;
        return new TrainingModel(model, config.Model.Source == "scratch");
    }

    private static DloralModel CreateFromScratch(DiffusersFolder folder, ModelOptions options, int rank, long seed)
    {
        AutoencoderKL? vae = null;
        UNet2DCondition? unet = null;
        CrossFrameRetrieval? cfr = null;
        try
        {
            vae = folder.LoadVae(options);
            torch.manual_seed(seed);
            var config = UNet2DConditionConfig.Load(folder.ComponentFile("unet", "config.json"));
            unet = new UNet2DCondition(config, new ModelOptions(options.Device, ScalarType.Float32));
            using var gen = new Generator((ulong)seed);
            DloralUnet.Prepare(unet, null, rank, rank, 8.0, gen);
            // Fresh B = 0 adapters would make the stage switch meaningless at first; they train from there.
            cfr = new CrossFrameRetrieval();
            if (options.Device is { } d) { unet.to(d); cfr.to(d); }
            if (options.DType != ScalarType.Float32) { unet.to(options.DType); cfr.to(options.DType); }
            return new DloralModel(vae, unet, cfr, new DloralAdapterOptions(DloralStage.Full));
        }
        catch
        {
            vae?.Dispose();
            unet?.Dispose();
            cfr?.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        if (Compact is not null) Compact.Dispose();
        else Model.Dispose();
    }
}
