using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Metrics;

/// <summary>
/// Structural similarity (Wang et al. 2004) as in BasicSR's <c>calculate_ssim</c>: 11×11 Gaussian window
/// σ = 1.5, K1 = 0.01, K2 = 0.03, data range 1, "valid" filtering (no padding), float64; RGB is the mean of
/// the per-channel SSIMs.
/// </summary>
public static class Ssim
{
    private const double C1 = 0.01 * 0.01;
    private const double C2 = 0.03 * 0.03;

    /// <summary>SSIM between two RGB images [3,H,W] in [0,1] (1 means identical).</summary>
    public static double Compute(Tensor result, Tensor reference, bool yOnly, int cropBorder = 0)
    {
        ImageLayout.CheckSameShape(result, reference, "SSIM");
        using var scope = NewDisposeScope();
        var a = ImageLayout.AsBatch64(result, "SSIM result");
        var b = ImageLayout.AsBatch64(reference, "SSIM reference");
        if (yOnly) { a = ColorSpace.RgbToY(a); b = ColorSpace.RgbToY(b); }
        a = ImageLayout.CropBorder(a, cropBorder);
        b = ImageLayout.CropBorder(b, cropBorder);
        if (a.shape[^1] < 11 || a.shape[^2] < 11)
            throw new ArgumentException($"SSIM needs at least 11x11 pixels after the border crop, got {a.shape[^1]}x{a.shape[^2]}");
        // One channel at a time: the float64 intermediates of a 4K frame would otherwise take gigabytes.
        double sum = 0;
        long channels = a.shape[1];
        for (long c = 0; c < channels; c++)
        {
            using var map = SsimMap(a.narrow(1, c, 1), b.narrow(1, c, 1));
            sum += map.mean().item<double>();
        }
        return sum / channels;
    }

    /// <summary>Per-pixel SSIM map of [N,C,H,W] float64 inputs, "valid" size [N,C,H-10,W-10].</summary>
    internal static Tensor SsimMap(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        long channels = a.shape[1];
        var g = GaussianKernel1D(11, 1.5, a.dtype, a.device);
        // Separable filtering, one group per channel so channels never mix.
        var wy = g.view(1, 1, 11, 1).expand(channels, 1, 11, 1).contiguous();
        var wx = g.view(1, 1, 1, 11).expand(channels, 1, 1, 11).contiguous();
        Tensor Filter(Tensor x) => nn.functional.conv2d(nn.functional.conv2d(x, wy, groups: channels), wx, groups: channels);
        var mu1 = Filter(a);
        var mu2 = Filter(b);
        var mu1Sq = mu1 * mu1;
        var mu2Sq = mu2 * mu2;
        var mu12 = mu1 * mu2;
        var s1 = Filter(a * a) - mu1Sq;
        var s2 = Filter(b * b) - mu2Sq;
        var s12 = Filter(a * b) - mu12;
        var map = (2 * mu12 + C1) * (2 * s12 + C2) / ((mu1Sq + mu2Sq + C1) * (s1 + s2 + C2));
        return map.MoveToOuterDisposeScope();
    }

    /// <summary>Normalised 1-D Gaussian (like OpenCV's getGaussianKernel).</summary>
    internal static Tensor GaussianKernel1D(int size, double sigma, ScalarType dtype, Device device)
    {
        var k = new double[size];
        double sum = 0;
        for (int i = 0; i < size; i++)
        {
            double x = i - (size - 1) / 2.0;
            k[i] = Math.Exp(-x * x / (2 * sigma * sigma));
            sum += k[i];
        }
        for (int i = 0; i < size; i++) k[i] /= sum;
        return tensor(k, dtype: dtype, device: device);
    }
}
