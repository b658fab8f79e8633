using Dloral.Metrics;
using Dloral.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Tests.Metrics;

/// <summary>
/// The fast paths of the evaluator (shifted-slice filters, ground-truth features shared by all rows) against the
/// plain definitions they replaced.
/// </summary>
public class MetricKernelTests
{
    /// <summary>Separable "valid" Gaussian filtering with grouped conv2d: the definition the SSIM filter replaced.</summary>
    private static Tensor ConvFilterValid(Tensor x, int size, double sigma)
    {
        long c = x.shape[1];
        var g = Ssim.GaussianKernel1D(size, sigma, x.dtype, x.device);
        var wy = g.view(1, 1, size, 1).expand(c, 1, size, 1).contiguous();
        var wx = g.view(1, 1, 1, size).expand(c, 1, 1, size).contiguous();
        return nn.functional.conv2d(nn.functional.conv2d(x, wy, groups: c), wx, groups: c);
    }

    [Fact]
    public void Ssim_map_equals_the_grouped_convolution_definition()
    {
        using var scope = NewDisposeScope();
        using var gen = new Generator(3);
        var a = rand([1, 2, 37, 45], dtype: ScalarType.Float64, generator: gen);
        var b = (a + randn([1, 2, 37, 45], dtype: ScalarType.Float64, generator: gen) * 0.1).clamp(0, 1);
        const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
        var mu1 = ConvFilterValid(a, 11, 1.5);
        var mu2 = ConvFilterValid(b, 11, 1.5);
        var s1 = ConvFilterValid(a * a, 11, 1.5) - mu1 * mu1;
        var s2 = ConvFilterValid(b * b, 11, 1.5) - mu2 * mu2;
        var s12 = ConvFilterValid(a * b, 11, 1.5) - mu1 * mu2;
        var expected = (2 * mu1 * mu2 + c1) * (2 * s12 + c2) / ((mu1 * mu1 + mu2 * mu2 + c1) * (s1 + s2 + c2));
        var map = Ssim.SsimMap(a, b);
        Assert.Equal(new long[] { 1, 2, 27, 35 }, map.shape);
        TensorAssert.Close(expected, map, atol: 1e-13, rtol: 0, what: "SSIM map");
        Assert.True(map.mean().item<double>() < 0.99, "the test pair is too similar to show anything");
    }

    [Theory]
    [InlineData(4.0, 50, 61)]   // matrix products (both sides ≤ LucasKanadeFlow.MatrixBlurMaxSide)
    [InlineData(1.0, 50, 61)]
    [InlineData(4.0, 40, 230)]  // shifted slices
    [InlineData(1.0, 40, 230)]
    public void Flow_blur_equals_the_replicate_padded_grouped_convolution(double sigma, int height, int width)
    {
        using var scope = NewDisposeScope();
        using var gen = new Generator(4);
        var x = rand([2, 5, height, width], generator: gen);
        int radius = (int)Math.Ceiling(2.5 * sigma);
        var padded = nn.functional.pad(x, [radius, radius, radius, radius], PaddingModes.Replicate);
        var expected = ConvFilterValid(padded, 2 * radius + 1, sigma);
        var blurred = LucasKanadeFlow.Blur(x, sigma);
        TensorAssert.Close(expected, blurred, atol: 2e-6, rtol: 0, what: $"blur sigma {sigma}");
        // Levels smaller than the window stay as they are (replicate padding needs pad < size).
        var tiny = rand([1, 5, 6, 40], generator: gen);
        TensorAssert.Equal(tiny, LucasKanadeFlow.Blur(tiny, 4.0), "tiny level");
    }

    [Fact]
    public void Flow_blur_matrices_cached_in_inference_mode_still_work_with_gradients()
    {
        using var scope = NewDisposeScope();
        var x = rand([1, 2, 37, 53], generator: new Generator(9));
        Tensor first;
        using (inference_mode()) first = LucasKanadeFlow.Blur(x, 4.0);   // builds and caches the 37- and 53-matrices
        var y = x.clone().requires_grad_(true);
        var again = LucasKanadeFlow.Blur(y, 4.0);                          // reuses them with autograd on
        again.sum().backward();
        TensorAssert.Close(first, again.detach(), atol: 0, rtol: 0, what: "cached blur");
        Assert.True(y.grad!.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void No_reference_indicators_equal_their_conv2d_definitions()
    {
        using var scope = NewDisposeScope();
        var rgb = TestImages.Random(33, 47, seed: 12);
        var y = ColorSpace.RgbToY(rgb.unsqueeze(0).to_type(ScalarType.Float64)) * 255.0;
        var kx = tensor(new double[] { -1, 0, 1, -2, 0, 2, -1, 0, 1 }, dtype: ScalarType.Float64).view(1, 1, 3, 3);
        var gx = nn.functional.conv2d(y, kx);
        var gy = nn.functional.conv2d(y, kx.transpose(2, 3).contiguous());
        double energy = (gx.square() + gy.square()).mean().item<double>() / 1000.0;
        var lap = tensor(new double[] { 1, -2, 1, -2, 4, -2, 1, -2, 1 }, dtype: ScalarType.Float64).view(1, 1, 3, 3);
        double sigma = Math.Sqrt(Math.PI / 2.0) * nn.functional.conv2d(y, lap).abs().mean().item<double>() / 6.0;
        Assert.Equal(energy, NoReferenceIndicators.GradientEnergy(rgb), 10);
        Assert.Equal(sigma, NoReferenceIndicators.NoiseSigma(rgb), 10);
        Assert.True(energy > 1 && sigma > 1, $"degenerate test image: energy {energy}, sigma {sigma}");
    }

    [Fact]
    public void Ground_truth_features_are_computed_once_per_frame_and_give_the_pairwise_distance()
    {
        using var scope = NewDisposeScope();
        var gt = Enumerable.Range(0, 3).Select(t => TestImages.Texture(64, 96, dx: 1.5 * t)).ToArray();
        using var gen = new Generator(8);
        var noisy = gt.Select(f => (f + randn(f.shape, generator: gen) * 0.05).clamp(0, 1)).ToArray();
        var blurred = gt.Select(f => LucasKanadeFlow.Blur(f.unsqueeze(0), 1.0).squeeze(0)).ToArray();
        EvalInput Input(string name, Tensor[] frames) => new(name, name, () => frames.Select(f => f.clone()), frames.Length);
        var timings = new EvalTimings();
        using var report = VideoEvaluator.Evaluate([Input("noisy", noisy), Input("blurred", blurred)], Input("gt", gt), null,
            new EvalOptions { Timings = timings, Temporal = false, CropSize = 32 });
        // Per frame: the ground truth once plus one forward per row (3 frames × (1 + 2 rows)), not 2 per row.
        Assert.Equal(9, timings.Calls("feature distance"));
        Assert.Equal(12, timings.Calls("ssim")); // Y and RGB, per row and frame

        using var metric = ResNet18FeatureDistance.Load();
        for (int t = 0; t < 3; t++)
        {
            Assert.Equal(metric.Distance(noisy[t], gt[t]), report.Rows[0].Frames[t][MetricKeys.FeatureDistance], 9);
            Assert.Equal(metric.Distance(blurred[t], gt[t]), report.Rows[1].Frames[t][MetricKeys.FeatureDistance], 9);
        }
        Assert.True(report.Rows[0].Frames[0][MetricKeys.FeatureDistance] > 0);
        Assert.Throws<ArgumentException>(() => { using var f = metric.Features(gt[0]); metric.Distance(zeros(3, 64, 64), f); });
    }
}
