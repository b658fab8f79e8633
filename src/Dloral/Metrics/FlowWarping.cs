using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Metrics;

/// <summary>
/// Backward warping by a dense flow, for the metrics (the model's own warp lives in Dloral.Temporal).
/// Convention everywhere in Metrics: flow [N,2,H,W] in pixels, channel 0 = x, 1 = y;
/// <c>Warp(img, flow)(p) = img(p + flow(p))</c> with bilinear sampling.
/// </summary>
public static class FlowWarping
{
    /// <summary>Bilinear backward warp; samples outside the image repeat the border.</summary>
    public static Tensor Warp(Tensor image, Tensor flow)
    {
        using var scope = NewDisposeScope();
        var grid = SamplingGrid(flow);
        var warped = nn.functional.grid_sample(image, grid.to_type(image.dtype), GridSampleMode.Bilinear, GridSamplePaddingMode.Border, align_corners: true);
        return warped.MoveToOuterDisposeScope();
    }

    /// <summary>1 where p + flow(p) lies inside the image (so the warped value is real data), else 0; [N,1,H,W].</summary>
    public static Tensor InsideMask(Tensor flow)
    {
        using var scope = NewDisposeScope();
        long h = flow.shape[2], w = flow.shape[3];
        var (x, y) = Coordinates(flow);
        var inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1);
        return inside.unsqueeze(1).to_type(flow.dtype).MoveToOuterDisposeScope();
    }

    private static (Tensor X, Tensor Y) Coordinates(Tensor flow)
    {
        if (flow.dim() != 4 || flow.shape[1] != 2)
            throw new ArgumentException($"flow must be [N,2,H,W], got [{string.Join(",", flow.shape)}]");
        long h = flow.shape[2], w = flow.shape[3];
        var xs = arange(w, dtype: flow.dtype, device: flow.device).view(1, 1, w);
        var ys = arange(h, dtype: flow.dtype, device: flow.device).view(1, h, 1);
        return (xs + flow[.., 0], ys + flow[.., 1]);
    }

    private static Tensor SamplingGrid(Tensor flow)
    {
        long h = flow.shape[2], w = flow.shape[3];
        var (x, y) = Coordinates(flow);
        // align_corners=true: -1 and +1 are the centres of the first and last pixels.
        var gx = w > 1 ? x * (2.0 / (w - 1)) - 1.0 : zeros_like(x);
        var gy = h > 1 ? y * (2.0 / (h - 1)) - 1.0 : zeros_like(y);
        return stack([gx, gy], dim: 3);
    }
}
