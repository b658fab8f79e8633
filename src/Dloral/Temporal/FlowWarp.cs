using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Dloral.Temporal;

/// <summary>
/// Warps an image or feature map with a dense optical flow, exactly as the reference (mmagic/BasicVSR)
/// <c>flow_warp</c>: <c>grid_sample</c> with <c>align_corners=True</c> at pixel position + flow.
/// </summary>
public static class FlowWarp
{
    /// <summary>
    /// Samples <paramref name="x"/> [n,c,h,w] at (x + flow_x, y + flow_y).
    /// </summary>
    /// <param name="x">Input [n,c,h,w].</param>
    /// <param name="flow">Flow [n,h,w,2] in pixels: x (width) offset first, then y. Not normalised.</param>
    /// <param name="mode">Bilinear (default) or nearest sampling.</param>
    /// <param name="padding">Zeros (default, used for latents) or border (used inside SPyNet).</param>
    /// <param name="flowScale">Multiplies the flow first (e.g. a flow in low-resolution pixels used at ×f) within the same pass.</param>
    public static Tensor Warp(Tensor x, Tensor flow,
        GridSampleMode mode = GridSampleMode.Bilinear,
        GridSamplePaddingMode padding = GridSamplePaddingMode.Zeros,
        double flowScale = 1.0)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(flow);
        if (x.dim() != 4 || flow.dim() != 4 || flow.shape[3] != 2)
            throw new ArgumentException($"flow_warp expects x [n,c,h,w] and flow [n,h,w,2]; got x [{string.Join(",", x.shape)}], flow [{string.Join(",", flow.shape)}]");
        if (x.shape[2] != flow.shape[1] || x.shape[3] != flow.shape[2])
            throw new ArgumentException($"flow_warp: spatial size of input ({x.shape[2]}x{x.shape[3]}) and flow ({flow.shape[1]}x{flow.shape[2]}) differ");

        using var scope = NewDisposeScope();
        long h = x.shape[2], w = x.shape[3];
        // Positions and sampling in float32 for low-precision inputs: bfloat16 holds integers exactly only up to 256, so
        // its pixel grid was wrong past column 256 (a 320-wide latent), and libtorch's CPU grid_sample has no vectorised
        // bf16 kernel — its fallback crashed (segfault) on such windows. The result is cast back to x's dtype.
        var work = x.dtype is ScalarType.Float32 or ScalarType.Float64 ? x.dtype : ScalarType.Float32;
        // The reference's 2·(pixel + flow)/max(w−1, 1) − 1 with its rounding (pixel + flow first, then a correctly rounded
        // division: 2t/(w−1) and t/((w−1)/2) are the same float). Computed per axis on [n,h,w] planes and interleaved once
        // at the end: element-wise ops over the size-2 last axis of [n,h,w,2] do not vectorise (3× slower at 720p).
        var minusOne = tensor(new[] { -1.0 }, dtype: work, device: flow.device);
        using var scale = flowScale.ToScalar(); // held past the native call (an implicit Scalar may be collected during it)
        Tensor Axis(int axis, long extent, Tensor positions)
        {
            var component = flow.select(3, axis).to_type(work);
            var t = flowScale == 1.0 ? component + positions : component.mul(scale).add_(positions);
            return t.div_(tensor(new[] { Math.Max(extent - 1, 1) / 2.0 }, dtype: work, device: flow.device)).add_(minusOne);
        }
        var gx = Axis(0, w, arange(0, w, dtype: work, device: flow.device));
        var gy = Axis(1, h, arange(0, h, dtype: work, device: flow.device).view(h, 1));
        var g = stack([gx, gy], 3);
        return F.grid_sample(x.to_type(work), g, mode, padding, align_corners: true).to_type(x.dtype).MoveToOuterDisposeScope();
    }
}
