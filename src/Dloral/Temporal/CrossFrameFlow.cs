namespace Dloral.Temporal;

/// <summary>Which optical flow <see cref="CrossFrameRetrieval"/> aligns the previous latent with.</summary>
public enum CrossFrameFlow
{
    /// <summary>The learned SPyNet of the reference (<c>spynet.*</c> weights), on the frames downsampled to latent size.</summary>
    SpyNet,

    /// <summary>
    /// Classical pyramidal Lucas–Kanade (<see cref="Metrics.LucasKanadeFlow"/>) on the frames at latent resolution: no
    /// weights. The compact model uses it: a SPyNet trained from scratch on this machine never beat zero flow, while
    /// Lucas–Kanade recovers the sub-pixel pans of degraded clips (half the residual of zero flow on the eval clips).
    /// </summary>
    LucasKanade,
}

/// <summary>JSON names of <see cref="CrossFrameFlow"/> ("spynet", "lucas_kanade").</summary>
public static class CrossFrameFlowNames
{
    /// <summary>The JSON name of a flow method.</summary>
    public static string ToJsonName(this CrossFrameFlow flow) => flow switch
    {
        CrossFrameFlow.SpyNet => "spynet",
        CrossFrameFlow.LucasKanade => "lucas_kanade",
        _ => throw new ArgumentOutOfRangeException(nameof(flow), flow, null),
    };

    /// <summary>Parses "spynet" or "lucas_kanade"; null when the name is unknown.</summary>
    public static CrossFrameFlow? Parse(string? name) => name switch
    {
        "spynet" => CrossFrameFlow.SpyNet,
        "lucas_kanade" => CrossFrameFlow.LucasKanade,
        _ => null,
    };
}
