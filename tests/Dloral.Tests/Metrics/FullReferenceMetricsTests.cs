using Dloral.Metrics;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Tests.Metrics;

public class FullReferenceMetricsTests
{
    [Fact]
    public void Identical_images_give_infinite_psnr_and_ssim_one()
    {
        using var scope = NewDisposeScope();
        var img = TestImages.Random(48, 40, 1);
        Assert.True(double.IsPositiveInfinity(Psnr.Compute(img, img.clone(), yOnly: true, cropBorder: 4)));
        Assert.True(double.IsPositiveInfinity(Psnr.Compute(img, img.clone(), yOnly: false)));
        Assert.Equal(1.0, Ssim.Compute(img, img.clone(), yOnly: true, cropBorder: 4), 12);
        Assert.Equal(1.0, Ssim.Compute(img, img.clone(), yOnly: false), 12);
    }

    [Fact]
    public void Psnr_of_gaussian_noise_matches_the_analytic_value()
    {
        using var scope = NewDisposeScope();
        // Mid-grey keeps the noise away from clipping, so MSE = σ² and PSNR = 10·log10(1/σ²) = 34.15 dB.
        double sigma = 5.0 / 255.0;
        var clean = full(3, 256, 256, 0.5f);
        using var g = new Generator(7);
        var noisy = clean + randn([3, 256, 256], generator: g) * sigma;
        double expected = 10 * Math.Log10(1 / (sigma * sigma));
        Assert.InRange(Psnr.Compute(noisy, clean, yOnly: false), expected - 0.05, expected + 0.05);
        // Y is a weighted sum of independent channel noises scaled by 1/255 · (65.481, 128.553, 24.966).
        double ySigma = sigma * Math.Sqrt(65.481 * 65.481 + 128.553 * 128.553 + 24.966 * 24.966) / 255.0;
        double expectedY = 10 * Math.Log10(1 / (ySigma * ySigma));
        Assert.InRange(Psnr.Compute(noisy, clean, yOnly: true, cropBorder: 4), expectedY - 0.05, expectedY + 0.05);
    }

    [Fact]
    public void Y_channel_follows_bt601_studio_range()
    {
        using var scope = NewDisposeScope();
        var rgb = tensor(new float[] { 0, 1, 1, 0, 0, 1 }, [3, 1, 2]); // pixel0 = (0,1,0), pixel1 = (1,0,1)
        var y = ColorSpace.RgbToY(rgb);
        Assert.Equal((16 + 128.553) / 255, y[0, 0, 0].item<float>(), 5);
        Assert.Equal((16 + 65.481 + 24.966) / 255, y[0, 0, 1].item<float>(), 5);
        Assert.Equal(235.0 / 255, ColorSpace.RgbToY(ones(3, 1, 1))[0, 0, 0].item<float>(), 4);
    }

    [Fact]
    public void Ssim_matches_the_closed_form_for_constant_images()
    {
        using var scope = NewDisposeScope();
        // Constant images: σ terms vanish, SSIM = (2ab + C1) / (a² + b² + C1).
        double a = 0.3, b = 0.6, c1 = 0.0001;
        var x = full(3, 32, 32, (float)a);
        var y = full(3, 32, 32, (float)b);
        double expected = (2 * a * b + c1) / (a * a + b * b + c1);
        Assert.Equal(expected, Ssim.Compute(x, y, yOnly: false), 5);
        // Noise lowers SSIM; more noise lowers it more.
        var tex = TestImages.Texture(64, 64);
        using var g = new Generator(3);
        var n = randn([3, 64, 64], generator: g);
        double s1 = Ssim.Compute((tex + n * 0.02).clamp(0, 1), tex, yOnly: true);
        double s2 = Ssim.Compute((tex + n * 0.08).clamp(0, 1), tex, yOnly: true);
        Assert.True(s1 < 1 && s2 < s1, $"ssim noise 0.02 = {s1}, 0.08 = {s2}");
    }

    /// <summary>
    /// Reference values from scikit-image 0.19.3 (Debian python3-skimage): structural_similarity(gaussian_weights=True,
    /// sigma=1.5, use_sample_covariance=False, data_range=1) per channel, and peak_signal_noise_ratio(data_range=1),
    /// on this analytic float64 image pair, RGB and BT.601 Y with a 4-pixel border crop.
    /// </summary>
    [Fact]
    public void Ssim_and_psnr_match_scikit_image_on_an_analytic_pair()
    {
        using var scope = NewDisposeScope();
        const int h = 40, w = 48;
        var a = new double[3 * h * w];
        var b = new double[3 * h * w];
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    double v = 0.5 + 0.3 * Math.Sin(0.3 * x + 0.2 * y + c) + 0.1 * Math.Cos(0.005 * x * y + c);
                    a[(c * h + y) * w + x] = v;
                    b[(c * h + y) * w + x] = Math.Clamp(v + 0.08 * Math.Sin(0.9 * x - 0.5 * y + 2 * c), 0, 1);
                }
        var ta = tensor(a, [3, h, w]);
        var tb = tensor(b, [3, h, w]);
        Assert.Equal(0.850601124338, Ssim.Compute(tb, ta, yOnly: false), 9);
        Assert.Equal(0.953172096456, Ssim.Compute(tb, ta, yOnly: true, cropBorder: 4), 9);
        Assert.Equal(24.948461978061, Psnr.Compute(tb, ta, yOnly: false), 9);
        Assert.Equal(33.248028484535, Psnr.Compute(tb, ta, yOnly: true, cropBorder: 4), 9);
    }

    [Fact]
    public void Border_crop_removes_scale_pixels()
    {
        using var scope = NewDisposeScope();
        var a = full(3, 40, 40, 0.5f);
        var b = a.clone();
        b[.., 0..4, ..] = 0f; // damage only the 4-pixel border
        Assert.True(double.IsPositiveInfinity(Psnr.Compute(b, a, yOnly: true, cropBorder: 4)));
        Assert.False(double.IsPositiveInfinity(Psnr.Compute(b, a, yOnly: true, cropBorder: 3)));
    }

    [Fact]
    public void Mismatched_shapes_give_a_clear_error()
    {
        using var scope = NewDisposeScope();
        var ex = Assert.Throws<ArgumentException>(() => Psnr.Compute(zeros(3, 10, 12), zeros(3, 10, 10), yOnly: true));
        Assert.Contains("[3,10,12]", ex.Message);
        Assert.Throws<ArgumentException>(() => Ssim.Compute(zeros(3, 20, 20), zeros(3, 20, 21), yOnly: true));
    }

    [Fact]
    public void No_reference_indicators_track_noise_and_sharpness()
    {
        using var scope = NewDisposeScope();
        var flat = full(3, 128, 128, 0.5f);
        using var g = new Generator(11);
        // Equal noise in R,G,B: the Y noise is σ·(65.481+128.553+24.966)/255 = σ·0.8588 on the 8-bit scale.
        var noise = randn([1, 128, 128], generator: g).expand(3, 128, 128) * (10.0 / 255.0);
        double est = NoReferenceIndicators.NoiseSigma(flat + noise);
        Assert.InRange(est, 10 * 0.8588 * 0.93, 10 * 0.8588 * 1.07);
        Assert.True(NoReferenceIndicators.NoiseSigma(flat) < 1e-9);
        var tex = TestImages.Texture(64, 64);
        var blurred = nn.functional.avg_pool2d(tex.unsqueeze(0), 5, 1, 2, count_include_pad: false).squeeze(0);
        Assert.True(NoReferenceIndicators.GradientEnergy(tex) > NoReferenceIndicators.GradientEnergy(blurred) * 1.5);
    }
}
