using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Metrics;

/// <summary>
/// Peak signal-to-noise ratio, computed like BasicSR's <c>calculate_psnr</c>: float64, peak 1 on [0,1]
/// inputs (same as 255 on 8-bit), optional border crop and BT.601 Y channel.
/// Identical images give <see cref="double.PositiveInfinity"/>; reports write that as JSON null with
/// <c>"identical": true</c>.
/// </summary>
public static class Psnr
{
    /// <summary>PSNR in dB between two RGB images [3,H,W] in [0,1].</summary>
    /// <param name="result">The image under test.</param>
    /// <param name="reference">The ground truth.</param>
    /// <param name="yOnly">Compare the BT.601 Y channel (<see cref="ColorSpace.RgbToY"/>) instead of RGB.</param>
    /// <param name="cropBorder">Pixels removed on each side before comparing (VSR papers use the scale).</param>
    public static double Compute(Tensor result, Tensor reference, bool yOnly, int cropBorder = 0)
    {
        ImageLayout.CheckSameShape(result, reference, "PSNR");
        using var scope = NewDisposeScope();
        var a = ImageLayout.AsBatch64(result, "PSNR result");
        var b = ImageLayout.AsBatch64(reference, "PSNR reference");
        if (yOnly) { a = ColorSpace.RgbToY(a); b = ColorSpace.RgbToY(b); }
        a = ImageLayout.CropBorder(a, cropBorder);
        b = ImageLayout.CropBorder(b, cropBorder);
        double mse = (a - b).square().mean().item<double>();
        return FromMse(mse);
    }

    /// <summary>10·log10(1/mse); +∞ when mse is 0.</summary>
    public static double FromMse(double mse) => mse <= 0 ? double.PositiveInfinity : 10.0 * Math.Log10(1.0 / mse);
}
