namespace Dloral.Pipeline;

/// <summary>Which LoRA branches run (the reference's <c>--stages</c>).</summary>
public enum DloralStage
{
    /// <summary>Stage 0: the three C-LoRA (consistency) adapters only.</summary>
    Consistency = 0,

    /// <summary>Stage 1 (the reference default): C-LoRA and D-LoRA (quality/detail) adapters.</summary>
    Full = 1,
}

/// <summary>How a <see cref="DloralModel"/> runs its adapters.</summary>
/// <param name="Stage">Consistency only, or all six adapters.</param>
/// <param name="Detail">
/// Weight of the D-LoRA (quality) adapters in <see cref="DloralStage.Full"/>: 0 = consistency only, 1 = the reference,
/// &gt;1 = stronger detail. Ignored in <see cref="DloralStage.Consistency"/>.
/// </param>
/// <param name="MergeAdapters">Fold the active adapters into the UNet weights (same result within float tolerance, faster).</param>
public sealed record DloralAdapterOptions(DloralStage Stage = DloralStage.Full, double Detail = 1.0, bool MergeAdapters = false)
{
    /// <summary>The D-LoRA weight actually used (0 in stage 0).</summary>
    public double EffectiveDetail => Stage == DloralStage.Consistency ? 0.0 : Detail;
}
