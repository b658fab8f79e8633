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
        var g = GaussianWeights(11, 1.5);
        var mu1 = FilterValid(a, g);
        var mu2 = FilterValid(b, g);
        var mu1Sq = mu1 * mu1;
        var mu2Sq = mu2 * mu2;
        var mu12 = mu1 * mu2;
        var s1 = FilterValid(a * a, g) - mu1Sq;
        var s2 = FilterValid(b * b, g) - mu2Sq;
        var s12 = FilterValid(a * b, g) - mu12;
        var map = (2 * mu12 + C1) * (2 * s12 + C2) / ((mu1Sq + mu2Sq + C1) * (s1 + s2 + C2));
        return map.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Separable "valid" filtering of every channel on its own, as a weighted sum of shifted slices (rows, then
    /// columns). Same values as a grouped conv2d, but float64 conv2d has no fast CPU kernel: it builds an im2col
    /// buffer 11× the image (80 MB per 720p channel) and was 10× slower.
    /// </summary>
    private static Tensor FilterValid(Tensor x, double[] g)
    {
        using var scope = NewDisposeScope();
        int k = g.Length;
        long h = x.shape[2] - k + 1, w = x.shape[3] - k + 1;
        var rows = x.narrow(2, 0, h) * g[0];
        for (int i = 1; i < k; i++) rows.add_(x.narrow(2, i, h), g[i]);
        var cols = rows.narrow(3, 0, w) * g[0];
        for (int i = 1; i < k; i++) cols.add_(rows.narrow(3, i, w), g[i]);
        return cols.MoveToOuterDisposeScope();
    }

    /// <summary>Normalised 1-D Gaussian (like OpenCV's getGaussianKernel).</summary>
    internal static Tensor GaussianKernel1D(int size, double sigma, ScalarType dtype, Device device) =>
        tensor(GaussianWeights(size, sigma), dtype: dtype, device: device);

    /// <summary>The weights of <see cref="GaussianKernel1D"/> as numbers.</summary>
    internal static double[] GaussianWeights(int size, double sigma)
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
        return k;
    }
}
