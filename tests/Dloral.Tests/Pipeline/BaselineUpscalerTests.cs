using Dloral.Pipeline;
using Dloral.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Tests.Pipeline;

public class BaselineUpscalerTests
{
    private static (byte[] Data, long[] Shape) GoldenBytes(string name)
    {
        using var file = GoldenData.Open("pipeline_bits", "case_pipeline_bits.safetensors");
        using var t = file.Load(name);
        return (t.data<byte>().ToArray(), t.shape);
    }

    /// <summary>HWC bytes → float [3,H,W] in [0,1].</summary>
    private static Tensor ToChw(byte[] hwc, int h, int w) =>
        torch.tensor(hwc, new long[] { h, w, 3 }).permute(2, 0, 1).to_type(ScalarType.Float32).div_(255f);

    /// <summary>float [3,H,W] → HWC bytes, rounded like the pipeline's output.</summary>
    private static byte[] ToHwcBytes(Tensor chw) =>
        chw.clamp(0, 1).mul(255f).round().to_type(ScalarType.Byte).permute(1, 2, 0).contiguous().data<byte>().ToArray();

    private static (double Mean, int Max) Diff(byte[] a, byte[] b)
    {
        Assert.Equal(a.Length, b.Length);
        long sum = 0; int max = 0;
        for (int i = 0; i < a.Length; i++) { int d = Math.Abs(a[i] - b[i]); sum += d; max = Math.Max(max, d); }
        return ((double)sum / a.Length, max);
    }

    [Fact]
    public void Tap_weights_are_pillows_bicubic_bit_exact()
    {
        var (lq, s) = GoldenBytes("resize.in.lq_u8");
        var (expected, _) = GoldenBytes("resize.out.bicubic_x4_u8");
        int h = (int)s[0], w = (int)s[1];
        var ours = PilReference.Resize(lq, h, w, 3, h * 4, w * 4, ResampleKernel.Cubic(-0.5));
        Assert.Equal(expected, ours);
    }

    [Fact]
    public void Tap_weights_are_pillows_lanczos_bit_exact_when_shrinking()
    {
        var (src, s) = GoldenBytes("resize.out.bicubic_x4_u8");
        var (expected, e) = GoldenBytes("resize.out.lanczos_60x48_to_56x48_u8");
        var ours = PilReference.Resize(src, (int)s[0], (int)s[1], 3, (int)e[0], (int)e[1], ResampleKernel.Lanczos(3));
        Assert.Equal(expected, ours);
    }

    [Fact]
    public void Lanczos_float_is_within_one_level_of_pillow()
    {
        using var scope = torch.NewDisposeScope();
        var (src, s) = GoldenBytes("resize.out.bicubic_x4_u8");
        var (expected, e) = GoldenBytes("resize.out.lanczos_60x48_to_56x48_u8");
        var ours = ToHwcBytes(LanczosUpscaler.Resize(ToChw(src, (int)s[0], (int)s[1]), (int)e[0], (int)e[1]));
        var (mean, max) = Diff(expected, ours);
        // Pillow rounds to 8 bits between its two passes and uses 22-bit fixed-point weights; we do not.
        Assert.True(max <= 1, $"max diff {max} levels");
        Assert.True(mean < 0.02, $"mean diff {mean:F3} levels"); // measured: 0 (identical)
    }

    [Fact]
    public void Bicubic_x4_distance_to_pillow_is_as_documented()
    {
        using var scope = torch.NewDisposeScope();
        var (lq, s) = GoldenBytes("resize.in.lq_u8");
        var (expected, _) = GoldenBytes("resize.out.bicubic_x4_u8");
        int h = (int)s[0], w = (int)s[1];
        var input = ToChw(lq, h, w);

        // Our Pillow-kernel cubic (a = -0.5) in float: only rounding separates it from Pillow.
        var cols = SeparableResampler.Banded(w, w * 4, ResampleKernel.Cubic(-0.5));
        var rows = SeparableResampler.Banded(h, h * 4, ResampleKernel.Cubic(-0.5));
        var (pilMean, pilMax) = Diff(expected, ToHwcBytes(SeparableResampler.Apply(input, rows, cols)));
        // Pillow also clips its 8-bit intermediate after the horizontal pass, which matters on this
        // noise image (cubic overshoot): measured mean 0.27, max 15 levels.
        Assert.True(pilMax <= 16 && pilMean < 0.35, $"a=-0.5 float vs Pillow: mean {pilMean:F3}, max {pilMax}");

        // PyTorch's bicubic (a = -0.75, replicated edges) is sharper than Pillow's: on this random
        // 12x15 image it differs by several levels (see docs/baselines.md), but stays close on average.
        using var bic = new BicubicUpscaler(4);
        var (bMean, bMax) = Diff(expected, ToHwcBytes(bic.Upscale(new FrameWindow(new[] { input }, 0, 0, true))));
        // Measured: mean 3.83, max 21 levels (docs/baselines.md). The bounds leave room for float noise only.
        Assert.InRange(bMean, 3.5, 4.2);
        Assert.InRange(bMax, 18, 24);
    }

    /// <summary>Independent double-precision Keys a=-0.75 with clamped taps (PyTorch align_corners=false).</summary>
    private static double[,] TorchBicubicReference(double[,] img, int scale)
    {
        int h = img.GetLength(0), w = img.GetLength(1);
        static double K(double x)
        {
            const double a = -0.75; x = Math.Abs(x);
            return x < 1 ? ((a + 2) * x - (a + 3)) * x * x + 1 : x < 2 ? (((x - 5) * x + 8) * x - 4) * a : 0;
        }
        var o = new double[h * scale, w * scale];
        for (int i = 0; i < h * scale; i++)
            for (int j = 0; j < w * scale; j++)
            {
                double sy = (i + 0.5) / scale - 0.5, sx = (j + 0.5) / scale - 0.5;
                int y0 = (int)Math.Floor(sy), x0 = (int)Math.Floor(sx);
                double acc = 0;
                for (int dy = -1; dy <= 2; dy++)
                    for (int dx = -1; dx <= 2; dx++)
                    {
                        int yy = Math.Clamp(y0 + dy, 0, h - 1), xx = Math.Clamp(x0 + dx, 0, w - 1);
                        acc += K(sy - (y0 + dy)) * K(sx - (x0 + dx)) * img[yy, xx];
                    }
                o[i, j] = acc;
            }
        return o;
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Bicubic_matches_keys_cubic_a075_reference(int scale)
    {
        using var scope = torch.NewDisposeScope();
        const int h = 9, w = 13;
        var rng = new Random(1234);
        var img = new double[h, w];
        var flat = new float[3 * h * w];
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    // A smooth ramp plus noise keeps values away from the [0,1] clamp.
                    double v = 0.2 + 0.03 * x + 0.02 * y + 0.1 * rng.NextDouble();
                    if (c == 1) img[y, x] = v;
                    flat[(c * h + y) * w + x] = (float)v;
                }
        var input = torch.tensor(flat, new long[] { 3, h, w });
        using var up = new BicubicUpscaler(scale);
        var output = up.Upscale(new FrameWindow(new[] { input }, 0, 0, true));
        Assert.Equal(new long[] { 3, h * scale, w * scale }, output.shape);
        var expected = TorchBicubicReference(img, scale);
        var exp = new float[h * scale * w * scale];
        for (int i = 0; i < h * scale; i++) for (int j = 0; j < w * scale; j++) exp[i * w * scale + j] = (float)expected[i, j];
        TensorAssert.Close(torch.tensor(exp, new long[] { h * scale, w * scale }), output[1], atol: 1e-5, rtol: 0, what: $"bicubic x{scale}");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void Lanczos_keeps_a_constant_image_constant(int scale)
    {
        using var scope = torch.NewDisposeScope();
        var input = torch.full(new long[] { 3, 7, 11 }, 0.37f);
        using var up = new LanczosUpscaler(scale);
        var output = up.Upscale(new FrameWindow(new[] { input }, 0, 0, true));
        Assert.Equal(new long[] { 3, 7 * scale, 11 * scale }, output.shape);
        TensorAssert.Close(torch.full(output.shape, 0.37f), output, atol: 1e-6, rtol: 0, what: "constant");
    }

    [Fact]
    public void Lanczos_and_bicubic_at_scale_one_are_identity()
    {
        using var scope = torch.NewDisposeScope();
        var input = torch.rand(3, 10, 14, generator: new torch.Generator(7));
        using var lanczos = new LanczosUpscaler(1);
        using var bicubic = new BicubicUpscaler(1);
        var window = new FrameWindow(new[] { input }, 0, 0, true);
        TensorAssert.Close(input, lanczos.Upscale(window), atol: 1e-6, rtol: 0, what: "lanczos x1");
        TensorAssert.Close(input, bicubic.Upscale(window), atol: 0, rtol: 0, what: "bicubic x1");
    }

    [Fact]
    public void Lanczos_weights_rows_sum_to_one_and_are_symmetric()
    {
        var w = SeparableResampler.Weights(20, 80, ResampleKernel.Lanczos(3));
        for (int i = 0; i < 80; i++)
        {
            double sum = 0;
            for (int x = 0; x < 20; x++) sum += w[i, x];
            Assert.Equal(1.0, sum, 12);
            for (int x = 0; x < 20; x++) Assert.Equal(w[i, x], w[79 - i, 19 - x], 12); // mirror symmetry
        }
    }
}
