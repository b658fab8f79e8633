using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Temporal;

/// <summary>
/// The reference's frame-difference uncertainty map (<c>compute_frame_difference_mask</c> in test_DLoRAL.py)
/// and the grayscale chain that feeds it: PIL <c>convert('L')</c>, /255, nearest ×1/8.
/// </summary>
public static class UncertaintyMap
{
    /// <summary>
    /// Binary mask [1,h,w] from frames [T,1,h,w]: v = unbiased variance over frames, 1 where v ≥ mean(v) and v ≠ 0.
    /// </summary>
    public static Tensor FrameDifferenceMask(Tensor frames)
    {
        ArgumentNullException.ThrowIfNull(frames);
        if (frames.dim() != 4 || frames.shape[0] < 2)
            throw new ArgumentException($"frame difference mask needs frames [T>=2,1,h,w], got [{string.Join(",", frames.shape)}]");
        using var scope = NewDisposeScope();
        var v = frames.var(0L, unbiased: true);
        var threshold = v.mean();
        // where(v >= thr, v, 0) then where(x == 0, x, 1): v == 0 stays 0 even when thr == 0.
        var mask = v.ge(threshold).logical_and(v.ne(0)).to_type(frames.dtype);
        return mask.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// PIL <c>Image.convert('L')</c> on RGB bytes: L = (R·19595 + G·38470 + B·7471 + 0x8000) >> 16 (ITU-R 601-2).
    /// </summary>
    /// <param name="rgb">uint8 [...,3,H,W] (channel-first).</param>
    /// <returns>uint8 [...,H,W].</returns>
    public static Tensor GrayU8(Tensor rgb)
    {
        ArgumentNullException.ThrowIfNull(rgb);
        if (rgb.dtype != ScalarType.Byte || rgb.dim() < 3 || rgb.shape[^3] != 3)
            throw new ArgumentException($"GrayU8 expects uint8 [...,3,H,W], got {rgb.dtype} [{string.Join(",", rgb.shape)}]");
        using var scope = NewDisposeScope();
        var x = rgb.to_type(ScalarType.Int32);
        var r = x.select(-3, 0);
        var g = x.select(-3, 1);
        var b = x.select(-3, 2);
        var l = (r * 19595 + g * 38470 + b * 7471 + 0x8000).bitwise_right_shift(16);
        return l.to_type(ScalarType.Byte).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Gray uint8 [...,H,W] → float /255, then nearest ×1/8 (<c>interpolate(scale_factor=0.125)</c>: pixel (8i, 8j)),
    /// as [...,1,⌊H/8⌋,⌊W/8⌋].
    /// </summary>
    public static Tensor GraySmall(Tensor grayU8)
    {
        ArgumentNullException.ThrowIfNull(grayU8);
        if (grayU8.dim() < 2)
            throw new ArgumentException($"GraySmall expects [...,H,W], got [{string.Join(",", grayU8.shape)}]");
        using var scope = NewDisposeScope();
        long h = grayU8.shape[^2], w = grayU8.shape[^1];
        var f = grayU8.to_type(ScalarType.Float32).div(255.0);
        var small = f.slice(-2, 0, (h / 8) * 8, 8).slice(-1, 0, (w / 8) * 8, 8);
        return small.unsqueeze(-3).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The model input built by test_DLoRAL.py for one window: frames' small gray images [T,1,h,w] →
    /// [1,T−1,1,h,w], every entry the mask over ALL T frames (the reference ignores the (cur, prev) pair it builds).
    /// </summary>
    public static Tensor ForWindow(Tensor graySmallFrames)
    {
        ArgumentNullException.ThrowIfNull(graySmallFrames);
        using var scope = NewDisposeScope();
        long t = graySmallFrames.shape[0];
        var mask = FrameDifferenceMask(graySmallFrames);                    // [1,h,w]
        var stacked = stack(Enumerable.Repeat(mask, (int)(t - 1)).ToArray()); // [T-1,1,h,w]
        return stacked.unsqueeze(0).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The map [n,1,1,H/8,W/8] (defined at 1/8, the reference's grid) on a latent grid of another codec factor:
    /// nearest-resized to [n,1,1,<paramref name="height"/>,<paramref name="width"/>]; unchanged when it already fits.
    /// Training and the video pipeline both use this, so the compact model sees the same map in both.
    /// </summary>
    public static Tensor ToLatentGrid(Tensor map, long height, long width)
    {
        ArgumentNullException.ThrowIfNull(map);
        if (map.shape[3] == height && map.shape[4] == width) return map;
        using var scope = NewDisposeScope();
        long n = map.shape[0];
        return nn.functional.interpolate(map.view(n, 1, map.shape[3], map.shape[4]), size: [height, width], mode: InterpolationMode.Nearest)
            .view(n, 1, 1, height, width).MoveToOuterDisposeScope();
    }

    /// <summary>Convenience: RGB uint8 frames [T,3,H,W] (already at the processing size) → [1,T−1,1,H/8,W/8].</summary>
    public static Tensor FromRgbFrames(Tensor rgbU8)
    {
        using var scope = NewDisposeScope();
        return ForWindow(GraySmall(GrayU8(rgbU8))).MoveToOuterDisposeScope();
    }
}
