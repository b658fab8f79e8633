using Dloral.Temporal;
using Dloral.Training.ClipDatasets;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Dloral.Training;

/// <summary>
/// Supervised SPyNet training signal from the exactly known synthetic camera motion of image clips
/// (<see cref="ImageClipDataset"/>): the true optical flow between two frames, the flow the
/// <see cref="CrossFrameRetrieval"/> computes, and the end-point error between them.
/// </summary>
/// <remarks>
/// Flow convention (that of <see cref="FlowWarp.Warp"/> and of the CFR): a flow from frame A to frame B is
/// [2,h,w], channel 0 = x (width) and channel 1 = y (height) displacement in pixels of that grid, such that
/// <c>FlowWarp.Warp(B, flow)</c> (sampling B at q + flow(q), align_corners=True) reproduces A. The CFR uses
/// spynet(cur, prev), i.e. the flow from the current frame to the previous one.
/// </remarks>
public static class FlowSupervision
{
    /// <summary>
    /// The exact flow of an image clip from frame <paramref name="from"/> to frame <paramref name="to"/>:
    /// for every pixel q of frame <c>from</c>, the displacement to where the same scene point lies in frame
    /// <c>to</c>, so <c>FlowWarp.Warp(frame[to], flow)</c> ≈ frame[from]. Includes the dihedral augmentation.
    /// </summary>
    /// <param name="motion">The clip's camera motion.</param>
    /// <param name="dihedralIndex">The dihedral transform applied to all frames after rendering (0..7).</param>
    /// <param name="crop">Frame side S.</param>
    /// <param name="regionSize">Side R of the region <see cref="ImageClipDataset.RenderMotion"/> sampled (only float rounding of its theta depends on it).</param>
    /// <param name="from">Frame the flow starts from (the CFR's "current" frame).</param>
    /// <param name="to">Frame the flow points into (the CFR's "previous" frame).</param>
    /// <returns>[2,S,S] float32 on the CPU, x then y, in pixels of the S×S frame.</returns>
    public static Tensor CameraFlow(CameraMotion motion, int dihedralIndex, int crop, int regionSize, int from, int to)
    {
        ArgumentNullException.ThrowIfNull(motion);
        if (crop < 2 || regionSize < 1) throw new ArgumentOutOfRangeException(nameof(crop), $"CameraFlow: crop ({crop}) must be ≥ 2 and region ({regionSize}) ≥ 1");
        if (from < 0 || to < 0) throw new ArgumentOutOfRangeException(nameof(from), $"CameraFlow: frame indices must be ≥ 0 (from {from}, to {to})");
        if (dihedralIndex is < 0 or >= Dihedral.Count) throw new ArgumentOutOfRangeException(nameof(dihedralIndex), dihedralIndex, "Dihedral index must be in 0..7.");

        // Frame t samples the region at p_in = A_t·u + d_t (pixels relative to the centres), see RenderMotion.
        var (aFrom, dFrom) = RenderAffine(motion, crop, regionSize, from);
        var (aTo, dTo) = RenderAffine(motion, crop, regionSize, to);
        double det = aTo[0] * aTo[3] - aTo[1] * aTo[2];
        double[] aToInv = [aTo[3] / det, -aTo[1] / det, -aTo[2] / det, aTo[0] / det];

        // Where each pixel of the augmented frame came from, read off Dihedral.Apply itself (so the
        // rotation/flip conventions cannot drift): channel 0/1 = x/y of the unaugmented pixel, centred.
        double c = (crop - 1) / 2.0;
        float[] src;
        using (var scope = NewDisposeScope())
        {
            var ys = arange(crop, dtype: float32).sub(c).view(crop, 1).expand(crop, crop);
            var xs = arange(crop, dtype: float32).sub(c).view(1, crop).expand(crop, crop);
            src = Dihedral.Apply(stack([xs, ys], 0), dihedralIndex).contiguous().data<float>().ToArray();
        }
        long plane = (long)crop * crop;
        // The dihedral map is linear in centred coordinates: u = N·p. Its columns are the source steps of one
        // pixel right / one pixel down; a signed permutation, so N⁻¹ = Nᵀ maps displacements back.
        double n00 = src[1] - src[0], n10 = src[plane + 1] - src[plane];
        double n01 = src[crop] - src[0], n11 = src[plane + crop] - src[plane];

        var flow = new float[2 * plane];
        for (long i = 0; i < plane; i++)
        {
            double ux = src[i], uy = src[plane + i];
            double px = aFrom[0] * ux + aFrom[1] * uy + dFrom.X - dTo.X;
            double py = aFrom[2] * ux + aFrom[3] * uy + dFrom.Y - dTo.Y;
            double fx = aToInv[0] * px + aToInv[1] * py - ux;
            double fy = aToInv[2] * px + aToInv[3] * py - uy;
            flow[i] = (float)(n00 * fx + n10 * fy);
            flow[plane + i] = (float)(n01 * fx + n11 * fy);
        }
        return tensor(flow, [2, crop, crop]);
    }

    /// <summary>
    /// <see cref="CameraFlow(CameraMotion, int, int, int, int, int)"/> for a clip of <see cref="ImageClipDataset"/>
    /// (region side = crop + 2·<see cref="ImageClipDataset.MotionMargin"/>, as the dataset rendered it).
    /// </summary>
    /// <returns>[2,S,S] float32 on the clip's device.</returns>
    public static Tensor CameraFlow(ClipSample clip, int from, int to)
    {
        ArgumentNullException.ThrowIfNull(clip);
        var motion = clip.Motion ?? throw new ArgumentException($"CameraFlow: clip '{clip.Source}' has no camera motion (a video clip?): its true flow is unknown", nameof(clip));
        long t = clip.Hr.shape[0], h = clip.Hr.shape[2], w = clip.Hr.shape[3];
        if (h != w) throw new ArgumentException($"CameraFlow: image clips are square, got {h}x{w} from '{clip.Source}'", nameof(clip));
        if (from >= t || to >= t) throw new ArgumentOutOfRangeException(nameof(from), $"CameraFlow: frames {from}→{to} outside the clip's {t} frames");
        int crop = (int)w;
        int region = crop + 2 * ImageClipDataset.MotionMargin(motion, crop, (int)t);
        using var flow = CameraFlow(motion, clip.DihedralIndex, crop, region, from, to);
        return flow.to(clip.Hr.device);
    }

    /// <summary>The true flows of a batch of image clips (all of one size), stacked: [n,2,S,S] on the first clip's device.</summary>
    public static Tensor CameraFlow(IReadOnlyList<ClipSample> clips, int from, int to)
    {
        ArgumentNullException.ThrowIfNull(clips);
        if (clips.Count == 0) throw new ArgumentException("CameraFlow: no clips", nameof(clips));
        using var scope = NewDisposeScope();
        return stack(clips.Select(c => CameraFlow(c, from, to)).ToArray()).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The flow <paramref name="cfr"/> computes for the pair (its Forward's spynet(cur, prev), after the same
    /// downsampling), on the latent grid it warps with, in latent pixels. With autograd: the SPyNet parameters
    /// receive gradients.
    /// </summary>
    /// <param name="cfr">The cross-frame retrieval whose SPyNet is trained.</param>
    /// <param name="cur">[n,3,H,W] in [-1,1], the frame the flow starts from.</param>
    /// <param name="prev">[n,3,H,W] in [-1,1], the frame the flow points into.</param>
    /// <returns>[n,2,H/f,W/f], f = the CFR's DownscaleFactor.</returns>
    public static Tensor SpyNetFlow(CrossFrameRetrieval cfr, Tensor cur, Tensor prev)
    {
        ArgumentNullException.ThrowIfNull(cfr);
        ArgumentNullException.ThrowIfNull(cur);
        ArgumentNullException.ThrowIfNull(prev);
        if (cur.dim() != 4 || !cur.shape.SequenceEqual(prev.shape) || cur.shape[1] != 3)
            throw new ArgumentException($"SpyNetFlow expects two [n,3,H,W] frames of one shape, got [{string.Join(",", cur.shape)}] and [{string.Join(",", prev.shape)}]");
        var cfg = cfr.Config;
        int f = cfg.DownscaleFactor, fs = cfg.FlowFrameFactor;
        long h = cur.shape[2], w = cur.shape[3];
        if (h % f != 0 || w % f != 0 || h / fs < 1 || w / fs < 1)
            throw new ArgumentException($"SpyNetFlow: frames {h}x{w} must be multiples of {f} and at least {fs} px (the CFR's flow grid factor)");
        using var scope = NewDisposeScope();
        // Same downsampling as Forward (it is per image, so batching the pair as t=2 changes nothing).
        var down = CrossFrameRetrieval.DownsampleFrames(stack([cur, prev], 1), fs);
        return cfr.LatentFlow(down.select(1, 0), down.select(1, 1), h / f, w / f).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The true flow [n,2,H,W] (full-resolution pixels) on the grid [h,w] of a predicted flow: area average of
    /// the vectors, x scaled by w/W and y by h/H (for a camera motion the cell average is the flow at the cell
    /// centre, which is where the downsampled grid's pixel sits).
    /// </summary>
    public static Tensor ResizeFlow(Tensor flow, long height, long width)
    {
        ArgumentNullException.ThrowIfNull(flow);
        if (flow.dim() != 4 || flow.shape[1] != 2)
            throw new ArgumentException($"ResizeFlow expects [n,2,H,W], got [{string.Join(",", flow.shape)}]");
        long hh = flow.shape[2], ww = flow.shape[3];
        if (hh == height && ww == width) return flow.alias();
        using var scope = NewDisposeScope();
        var pooled = F.adaptive_avg_pool2d(flow, [height, width]);
        var scale = tensor(new[] { (float)((double)width / ww), (float)((double)height / hh) }, dtype: flow.dtype, device: flow.device).view(1, 2, 1, 1);
        return (pooled * scale).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Mean end-point error (Euclidean distance of the flow vectors, in pixels of the predicted grid) between a
    /// predicted flow [n,2,h,w] and the full-resolution true flow [n,2,H,W] resized with <see cref="ResizeFlow"/>.
    /// Differentiable w.r.t. the prediction (zero gradient where the error is exactly zero).
    /// </summary>
    /// <param name="predictedFlow">[n,2,h,w].</param>
    /// <param name="trueFlowFullRes">[n,2,H,W] (no gradient needed).</param>
    /// <param name="ignoreBorder">Grid cells left out at each side: there the true flow may point outside the frame, where no network can know the content.</param>
    /// <returns>Scalar tensor.</returns>
    public static Tensor EndPointError(Tensor predictedFlow, Tensor trueFlowFullRes, int ignoreBorder = 0)
    {
        ArgumentNullException.ThrowIfNull(predictedFlow);
        ArgumentNullException.ThrowIfNull(trueFlowFullRes);
        if (predictedFlow.dim() != 4 || predictedFlow.shape[1] != 2 || trueFlowFullRes.dim() != 4 || trueFlowFullRes.shape[1] != 2 || predictedFlow.shape[0] != trueFlowFullRes.shape[0])
            throw new ArgumentException($"EndPointError expects flows [n,2,h,w] and [n,2,H,W], got [{string.Join(",", predictedFlow.shape)}] and [{string.Join(",", trueFlowFullRes.shape)}]");
        long h = predictedFlow.shape[2], w = predictedFlow.shape[3];
        if (ignoreBorder < 0 || 2 * ignoreBorder >= Math.Min(h, w))
            throw new ArgumentOutOfRangeException(nameof(ignoreBorder), ignoreBorder, $"EndPointError: border must leave cells of the {h}x{w} grid");
        using var scope = NewDisposeScope();
        var target = ResizeFlow(trueFlowFullRes.detach().to(predictedFlow.dtype, predictedFlow.device), h, w);
        var diff = predictedFlow - target;
        if (ignoreBorder > 0)
            diff = diff.narrow(2, ignoreBorder, h - 2 * ignoreBorder).narrow(3, ignoreBorder, w - 2 * ignoreBorder);
        // vector_norm's backward masks norm == 0 (sqrt of a sum of squares would give NaN gradients there).
        return linalg.vector_norm(diff, 2, [1]).mean().MoveToOuterDisposeScope();
    }

    /// <summary>RenderMotion's affine of frame <paramref name="t"/> in centred pixels (A row-major, d), from the same float32 theta.</summary>
    private static (double[] A, (double X, double Y) D) RenderAffine(CameraMotion m, int crop, int region, int t)
    {
        double ang = m.RotationDegPerFrame * t * Math.PI / 180, z = 1 + m.ZoomPerFrame * t;
        var (dx, dy) = m.Shift(t);
        double k = crop / (double)region;
        // Theta rounded to float exactly as RenderMotion does; affine_grid + grid_sample (align_corners=False)
        // turn normalised θ into pixels: u_norm = 2u/S, p_in = (R/2)·θ·[u_norm, 1].
        float t0 = (float)(k * z * Math.Cos(ang)), t1 = (float)(-k * z * Math.Sin(ang)), t2 = (float)(2 * dx / region);
        float t3 = (float)(k * z * Math.Sin(ang)), t4 = (float)(k * z * Math.Cos(ang)), t5 = (float)(2 * dy / region);
        double s = region / (double)crop;
        return ([s * t0, s * t1, s * t3, s * t4], (region / 2.0 * t2, region / 2.0 * t5));
    }
}
