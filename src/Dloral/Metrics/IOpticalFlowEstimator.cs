using static TorchSharp.torch;

namespace Dloral.Metrics;

/// <summary>A dense optical-flow estimator used by the temporal metrics.</summary>
public interface IOpticalFlowEstimator
{
    /// <summary>What the estimator is, written into reports (e.g. "pyramidal Lucas–Kanade (classical)").</summary>
    string Name { get; }

    /// <summary>
    /// Flow [N,2,H,W] (pixels, x then y) defined on <paramref name="from"/>: from(p) ≈ to(p + flow(p)).
    /// Inputs are RGB [3,H,W] or [N,3,H,W] in [0,1].
    /// </summary>
    Tensor Estimate(Tensor from, Tensor to);
}
