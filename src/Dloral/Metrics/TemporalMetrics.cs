using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Metrics;

/// <summary>Warping error of one frame pair: mean |O_t − warp(O_{t−1})| and mean squared error over the valid pixels.</summary>
/// <param name="MeanAbsolute">Mean absolute error over valid pixels and RGB channels, on [0,1] intensities.</param>
/// <param name="MeanSquared">Mean squared error over the same pixels (Lai et al. 2018's E_warp form).</param>
/// <param name="ValidFraction">Share of pixels that were neither occluded nor warped from outside the frame.</param>
public readonly record struct WarpingErrorValue(double MeanAbsolute, double MeanSquared, double ValidFraction);

/// <summary>
/// Temporal-consistency metrics. Flows come from an <see cref="IOpticalFlowEstimator"/> run on the ground truth
/// (or on the result itself when there is none); see <see cref="FlowWarping"/> for the flow convention.
/// </summary>
public static class TemporalMetrics
{
    /// <summary>
    /// Warping error of the pair (prev, cur): warp <paramref name="previous"/> to the current frame with
    /// <paramref name="flowCurToPrev"/> (defined on frame t, pointing into t−1) and compare with
    /// <paramref name="current"/> where <paramref name="validMask"/> is 1.
    /// </summary>
    public static WarpingErrorValue WarpingError(Tensor previous, Tensor current, Tensor flowCurToPrev, Tensor validMask)
    {
        ImageLayout.CheckSameShape(previous, current, "warping error");
        using var scope = NewDisposeScope();
        var prev = ImageLayout.AsBatch64(previous, "warping error previous");
        var cur = ImageLayout.AsBatch64(current, "warping error current");
        var flow = flowCurToPrev.to_type(ScalarType.Float64);
        var mask = validMask.to_type(ScalarType.Float64);
        var warped = FlowWarping.Warp(prev, flow);
        var diff = warped - cur;
        double count = mask.sum().item<double>();
        double channels = cur.shape[1];
        double total = mask.numel();
        if (count <= 0) return new WarpingErrorValue(double.NaN, double.NaN, 0);
        double mae = (diff.abs() * mask).sum().item<double>() / (count * channels);
        double mse = (diff.square() * mask).sum().item<double>() / (count * channels);
        return new WarpingErrorValue(mae, mse, count / total);
    }

    /// <summary>
    /// Valid-pixel mask [N,1,H,W] for warping with <paramref name="flowCurToPrev"/>: forward–backward
    /// consistency (Sundaram et al. 2010: |b + f(p+b)|² ≤ 0.01(|b|² + |f(p+b)|²) + 0.5) marks occlusions, and
    /// pixels whose source lies outside the frame are dropped.
    /// </summary>
    public static Tensor ValidMask(Tensor flowCurToPrev, Tensor flowPrevToCur)
    {
        using var scope = NewDisposeScope();
        var b = flowCurToPrev;
        var f = FlowWarping.Warp(flowPrevToCur.to_type(b.dtype), b);
        var sum = (b + f).square().sum(1, keepdim: true);
        var mag = b.square().sum(1, keepdim: true) + f.square().sum(1, keepdim: true);
        var consistent = (sum <= mag * 0.01 + 0.5).to_type(b.dtype);
        return (consistent * FlowWarping.InsideMask(b)).MoveToOuterDisposeScope();
    }

    /// <summary>tOF (TecoGAN): mean absolute difference of the two flows' components, in pixels.</summary>
    public static double FlowDifference(Tensor flowResult, Tensor flowReference)
    {
        ImageLayout.CheckSameShape(flowResult, flowReference, "tOF");
        using var scope = NewDisposeScope();
        return (flowResult.to_type(ScalarType.Float64) - flowReference.to_type(ScalarType.Float64)).abs().mean().item<double>();
    }
}
