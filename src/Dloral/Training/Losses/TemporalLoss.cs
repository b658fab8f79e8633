using Dloral.Metrics;
using static TorchSharp.torch;

namespace Dloral.Training.Losses;

/// <summary>Optical flow between two ground-truth frames and where warping with it is trustworthy.</summary>
/// <param name="FlowCurToPrev">[n,2,H,W] in pixels, defined on the current frame, pointing into the previous one.</param>
/// <param name="Valid">[n,1,H,W]: 1 where the pixel is visible in both frames (forward–backward check) and warps from inside the frame.</param>
public sealed record TemporalGuide(Tensor FlowCurToPrev, Tensor Valid) : IDisposable
{
    public void Dispose()
    {
        FlowCurToPrev.Dispose();
        Valid.Dispose();
    }
}

/// <summary>
/// A differentiable temporal-consistency loss. The reference (training_utils.batch_calculate_optical_flow) runs
/// OpenCV Farneback on detached numpy frames of the predictions and of the ground truth and compares the two flows,
/// so its loss has no gradient. Here the flow is estimated once on the ground-truth pair (no gradient through it),
/// the previous PREDICTION is warped with it, and the loss is the masked L1 distance to the current prediction:
/// <c>Σ m·|warp(pred_prev, F_gt) − pred_cur| / (C·Σ m)</c>, m = occlusion/out-of-frame validity × an optional
/// extra mask (e.g. 1 − the uncertainty map). Gradients reach both predictions.
/// </summary>
public sealed class TemporalLoss
{
    public TemporalLoss(IOpticalFlowEstimator? flow = null)
    {
        Flow = flow ?? new LucasKanadeFlow();
    }

    /// <summary>The classical flow estimator run on the ground truth.</summary>
    public IOpticalFlowEstimator Flow { get; }

    /// <summary>Flow and validity mask of a ground-truth pair [n,3,H,W] in [−1,1] (no gradient).</summary>
    public TemporalGuide Guide(Tensor gtPrev, Tensor gtCur)
    {
        ArgumentNullException.ThrowIfNull(gtPrev);
        ArgumentNullException.ThrowIfNull(gtCur);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var prev = (gtPrev.to_type(ScalarType.Float32) * 0.5 + 0.5).clamp(0, 1);
        var cur = (gtCur.to_type(ScalarType.Float32) * 0.5 + 0.5).clamp(0, 1);
        var back = Flow.Estimate(cur, prev);   // on cur, into prev
        var fwd = Flow.Estimate(prev, cur);    // on prev, into cur
        var valid = TemporalMetrics.ValidMask(back, fwd);
        return new TemporalGuide(back.MoveToOuterDisposeScope(), valid.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The loss for predictions [n,3,H,W] (any range) given the ground-truth guide; <paramref name="extraMask"/> [n,1,H,W]
    /// optional. With the ground-truth frames (<paramref name="targetPrev"/>, <paramref name="targetCur"/>) the loss is
    /// relative: only the temporal change the ground truth does not have is penalised,
    /// |(warp(pred_prev) − pred_cur) − (warp(gt_prev) − gt_cur)|, so its optimum is the ground truth itself. The absolute
    /// form (the reference's) is also minimised by a static or blurred output, which costs detail and PSNR.
    /// </summary>
    public static Tensor Compute(Tensor predPrev, Tensor predCur, TemporalGuide guide, Tensor? extraMask = null, Tensor? targetPrev = null, Tensor? targetCur = null)
    {
        ArgumentNullException.ThrowIfNull(predPrev);
        ArgumentNullException.ThrowIfNull(predCur);
        ArgumentNullException.ThrowIfNull(guide);
        if (!predPrev.shape.SequenceEqual(predCur.shape) || predPrev.shape[2] != guide.FlowCurToPrev.shape[2] || predPrev.shape[3] != guide.FlowCurToPrev.shape[3])
            throw new ArgumentException($"temporal loss: predictions [{string.Join(",", predPrev.shape)}] / [{string.Join(",", predCur.shape)}] do not match the flow [{string.Join(",", guide.FlowCurToPrev.shape)}]");
        using var scope = NewDisposeScope();
        var prev = predPrev.to_type(ScalarType.Float32);
        var cur = predCur.to_type(ScalarType.Float32);
        var flow = guide.FlowCurToPrev.to(prev.device);
        var change = FlowWarping.Warp(prev, flow) - cur;
        if ((targetPrev is null) != (targetCur is null)) throw new ArgumentException("temporal loss: give both ground-truth frames or neither");
        if (targetPrev is not null && targetCur is not null)
        {
            Tensor gtChange;
            using (no_grad()) gtChange = FlowWarping.Warp(targetPrev.to_type(ScalarType.Float32).to(prev.device), flow) - targetCur.to_type(ScalarType.Float32).to(prev.device);
            change = change - gtChange; // outside no_grad: the prediction's graph continues
        }
        var mask = guide.Valid.to(prev.device);
        if (extraMask is not null) mask = mask * extraMask.to_type(ScalarType.Float32).to(prev.device);
        var denom = mask.sum() * cur.shape[1] + 1e-8;
        return (change.abs() * mask).sum().div(denom).MoveToOuterDisposeScope();
    }
}
