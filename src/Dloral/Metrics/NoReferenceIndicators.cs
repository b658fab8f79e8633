using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Metrics;

/// <summary>
/// Cheap no-reference indicators. They are NOT quality metrics: more gradient energy can mean more detail
/// or more ringing and noise; they are reported as such, next to the noise estimate, to spot over-smoothing
/// or over-sharpening when no ground truth exists.
/// </summary>
public static class NoReferenceIndicators
{
    /// <summary>
    /// Gradient energy (Tenengrad): mean squared Sobel gradient magnitude of the BT.601 Y channel on the 8-bit
    /// scale (0..255), divided by 1000 to keep numbers readable. Higher = sharper (or noisier).
    /// </summary>
    public static double GradientEnergy(Tensor rgb)
    {
        using var scope = NewDisposeScope();
        var y = ColorSpace.RgbToY(ImageLayout.AsBatch64(rgb, "gradient energy")) * 255.0;
        var gx = Correlate3x3(y, [-1, 0, 1, -2, 0, 2, -1, 0, 1]);
        var gy = Correlate3x3(y, [-1, -2, -1, 0, 0, 0, 1, 2, 1]);
        return (gx.square() + gy.square()).mean().item<double>() / 1000.0;
    }

    /// <summary>
    /// Noise standard deviation on the 8-bit scale (0..255) by Immerkær's method ("Fast noise variance
    /// estimation", CVIU 1996): σ = √(π/2) · Σ|Y * N| / (6 (W−2)(H−2)), N the Laplacian-difference mask
    /// [[1,−2,1],[−2,4,−2],[1,−2,1]], on the BT.601 Y channel (studio-range luma).
    /// </summary>
    public static double NoiseSigma(Tensor rgb)
    {
        using var scope = NewDisposeScope();
        var y = ColorSpace.RgbToY(ImageLayout.AsBatch64(rgb, "noise estimate")) * 255.0;
        var response = Correlate3x3(y, [1, -2, 1, -2, 4, -2, 1, -2, 1]).abs();
        return Math.Sqrt(Math.PI / 2.0) * response.mean().item<double>() / 6.0;
    }

    /// <summary>
    /// "Valid" 3×3 cross-correlation (what conv2d computes) of [N,1,H,W] with the row-major kernel <paramref name="k"/>,
    /// as a weighted sum of shifted slices: float64 conv2d has no fast CPU kernel (im2col, ~10× slower).
    /// </summary>
    private static Tensor Correlate3x3(Tensor y, double[] k)
    {
        using var scope = NewDisposeScope();
        long h = y.shape[2] - 2, w = y.shape[3] - 2;
        Tensor? sum = null;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
            {
                if (k[3 * i + j] == 0) continue;
                var tap = y.narrow(2, i, h).narrow(3, j, w);
                if (sum is null) sum = tap * k[3 * i + j];
                else sum.add_(tap, k[3 * i + j]);
            }
        return sum!.MoveToOuterDisposeScope();
    }
}
