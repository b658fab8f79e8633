using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Metrics;

/// <summary>Colour conversions used by the metrics.</summary>
public static class ColorSpace
{
    /// <summary>
    /// BT.601 luma of RGB in [0,1], on the 8-bit "studio" scale divided by 255 (Y in [16/255, 235/255]):
    /// Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255 — exactly BasicSR's <c>rgb2ycbcr(img, y_only=True)</c>,
    /// the convention of VSR papers' PSNR-Y / SSIM-Y.
    /// </summary>
    /// <param name="rgb">[3,H,W] or [N,3,H,W] in [0,1].</param>
    /// <returns>[1,H,W] or [N,1,H,W] in the input's dtype.</returns>
    public static Tensor RgbToY(Tensor rgb)
    {
        int c = rgb.dim() == 3 ? 0 : 1;
        if (rgb.shape[c] != 3) throw new ArgumentException($"RgbToY: expected 3 channels, got shape [{string.Join(",", rgb.shape)}]");
        using var scope = NewDisposeScope();
        var r = rgb.narrow(c, 0, 1);
        var g = rgb.narrow(c, 1, 1);
        var b = rgb.narrow(c, 2, 1);
        var y = (r * 65.481 + g * 128.553 + b * 24.966 + 16.0) / 255.0;
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>The Rec.601 luma weights of R, G and B (full range).</summary>
    public static IReadOnlyList<double> Rec601LumaWeights { get; } = [0.299, 0.587, 0.114];

    /// <summary>Plain luminance (<see cref="Rec601LumaWeights"/>, full range) used to feed the optical-flow estimator.</summary>
    public static Tensor RgbToGray(Tensor rgb)
    {
        int c = rgb.dim() == 3 ? 0 : 1;
        using var scope = NewDisposeScope();
        var w = Rec601LumaWeights;
        var y = rgb.narrow(c, 0, 1) * w[0] + rgb.narrow(c, 1, 1) * w[1] + rgb.narrow(c, 2, 1) * w[2];
        return y.MoveToOuterDisposeScope();
    }
}
