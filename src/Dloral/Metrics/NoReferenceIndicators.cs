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
        var kx = tensor(new double[] { -1, 0, 1, -2, 0, 2, -1, 0, 1 }, dtype: ScalarType.Float64, device: y.device).view(1, 1, 3, 3);
        var ky = kx.transpose(2, 3).contiguous();
        var gx = nn.functional.conv2d(y, kx);
        var gy = nn.functional.conv2d(y, ky);
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
        var k = tensor(new double[] { 1, -2, 1, -2, 4, -2, 1, -2, 1 }, dtype: ScalarType.Float64, device: y.device).view(1, 1, 3, 3);
        var response = nn.functional.conv2d(y, k).abs();
        return Math.Sqrt(Math.PI / 2.0) * response.mean().item<double>() / 6.0;
    }
}
