using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Lora;

/// <summary>The six LoRA target-module lists of a DLoRAL UNet (quality = D-LoRA, consistency = C-LoRA).</summary>
public sealed record DloralTargetModules(
    IReadOnlyList<string> EncoderQuality,
    IReadOnlyList<string> DecoderQuality,
    IReadOnlyList<string> OthersQuality,
    IReadOnlyList<string> EncoderConsistency,
    IReadOnlyList<string> DecoderConsistency,
    IReadOnlyList<string> OthersConsistency)
{
    /// <summary>The module list of one adapter (by its DLoRAL name).</summary>
    public IReadOnlyList<string> For(string adapter) => adapter switch
    {
        DloralAdapters.EncoderQuality => EncoderQuality,
        DloralAdapters.DecoderQuality => DecoderQuality,
        DloralAdapters.OthersQuality => OthersQuality,
        DloralAdapters.EncoderConsistency => EncoderConsistency,
        DloralAdapters.DecoderConsistency => DecoderConsistency,
        DloralAdapters.OthersConsistency => OthersConsistency,
        _ => throw new ArgumentException($"'{adapter}' is not a DLoRAL adapter name", nameof(adapter)),
    };
}

/// <summary>
/// DLoRAL's adapter layout on the SD UNet: six adapters <c>default_{encoder,decoder,others}_{quality,consistency}</c>
/// with the reference's target rules (<c>initialize_unet</c>), and which of them are active per stage.
/// </summary>
public static class DloralAdapters
{
    public const string EncoderQuality = "default_encoder_quality";
    public const string DecoderQuality = "default_decoder_quality";
    public const string OthersQuality = "default_others_quality";
    public const string EncoderConsistency = "default_encoder_consistency";
    public const string DecoderConsistency = "default_decoder_consistency";
    public const string OthersConsistency = "default_others_consistency";

    /// <summary>D-LoRA (detail / quality) adapters.</summary>
    public static readonly IReadOnlyList<string> Quality = [EncoderQuality, DecoderQuality, OthersQuality];

    /// <summary>C-LoRA (temporal consistency) adapters.</summary>
    public static readonly IReadOnlyList<string> Consistency = [EncoderConsistency, DecoderConsistency, OthersConsistency];

    /// <summary>The reference's <c>add_adapter</c> order (quality first); after it only the last one is active.</summary>
    public static readonly IReadOnlyList<string> AddOrder = [.. Quality, .. Consistency];

    // initialize_unet's l_grep, in its order.
    private static readonly string[] Patterns =
        ["to_k", "to_q", "to_v", "to_out.0", "conv", "conv1", "conv2", "conv_in", "conv_shortcut", "conv_out", "proj_out", "proj_in", "ff.net.2", "ff.net.0.proj"];

    /// <summary>
    /// The reference rule on the plain UNet parameter names (in named_parameters order): skip names containing "bias"
    /// or "norm"; a name containing any pattern is encoder if it contains "down_blocks" or "conv_in", else decoder if
    /// "up_blocks" or "conv_out", else others. Quality and consistency lists are equal. (conv_in falls in the encoder lists.)
    /// </summary>
    public static DloralTargetModules TargetsFromParameterNames(IEnumerable<string> parameterNames)
    {
        ArgumentNullException.ThrowIfNull(parameterNames);
        List<string> enc = [], dec = [], oth = [];
        foreach (var n in parameterNames)
        {
            if (n.Contains("bias", StringComparison.Ordinal) || n.Contains("norm", StringComparison.Ordinal)) continue;
            if (!Patterns.Any(p => n.Contains(p, StringComparison.Ordinal))) continue;
            var module = n.Replace(".weight", "", StringComparison.Ordinal);
            if (n.Contains("down_blocks", StringComparison.Ordinal) || n.Contains("conv_in", StringComparison.Ordinal)) enc.Add(module);
            else if (n.Contains("up_blocks", StringComparison.Ordinal) || n.Contains("conv_out", StringComparison.Ordinal)) dec.Add(module);
            else oth.Add(module);
        }
        return new DloralTargetModules(enc, dec, oth, [.. enc], [.. dec], [.. oth]);
    }

    /// <summary>The reference lists for a UNet without adapters (its current named_parameters).</summary>
    public static DloralTargetModules TargetsOf(nn.Module unet)
    {
        ArgumentNullException.ThrowIfNull(unet);
        if (LoraModel.Layers(unet).Any()) throw new InvalidOperationException("target lists are defined on the UNet before adapters are injected");
        return TargetsFromParameterNames(unet.named_parameters().Select(p => p.name));
    }

    /// <summary>
    /// The adapters a DLoRAL UNet of this config carries: all six, except the two "others" ones when it has no mid block
    /// (the only layers the target rule puts in "others"; a pruned compact model), which <see cref="Inject"/> then skips.
    /// </summary>
    public static IReadOnlyList<string> ExpectedOn(Diffusion.UNet2DConditionConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config.MidBlockType is null ? AddOrder.Where(n => n is not (OthersQuality or OthersConsistency)).ToList() : AddOrder;
    }

    /// <summary>
    /// Adds the six adapters in the reference order (A Gaussian, B zero, drawn from <paramref name="generator"/>) and
    /// then, unlike the reference's leftover state (only <c>default_others_consistency</c> active), activates all six.
    /// </summary>
    public static void Inject(nn.Module unet, DloralTargetModules targets, int rankQuality = 4, int rankConsistency = 4, double loraAlpha = 8.0,
                              Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(targets);
        foreach (var name in AddOrder)
        {
            // A UNet without a mid block (a pruned compact model) has no "others" layers: those adapters do not exist.
            if (targets.For(name).Count == 0) continue;
            int rank = Quality.Contains(name) ? rankQuality : rankConsistency;
            AdapterInjector.AddAdapter(unet, name, targets.For(name), new LoraAdapterConfig(rank, loraAlpha), generator, activate: false);
        }
        Activate(unet, detail: 1.0);
    }

    /// <summary>
    /// Activates the consistency adapters at weight 1 and, if <paramref name="detail"/> ≠ 0, the quality adapters at
    /// weight <paramref name="detail"/>. detail 0 = the reference's stage 0 (C-LoRA only); 1 = stage 1 (all six, the
    /// reference default); &gt;1 = stronger detail. Keeps merged mode if the model is merged.
    /// </summary>
    public static void Activate(nn.Module unet, double detail)
    {
        if (!double.IsFinite(detail)) throw new ArgumentOutOfRangeException(nameof(detail), detail, "detail must be finite");
        // Only the adapters the model has (see Inject: a UNet without a mid block has no "others" adapters).
        var known = LoraModel.AdapterNames(unet);
        if (detail == 0)
            LoraModel.SetAdapters(unet, Consistency.Where(known.Contains).ToList());
        else
        {
            var names = AddOrder.Where(known.Contains).ToList();
            LoraModel.SetAdapters(unet, names, names.Select(n => Quality.Contains(n) ? detail : 1.0).ToList());
        }
    }
}
