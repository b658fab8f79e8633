using Dloral.Pipeline;
using Dloral.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Dloral.Tests.Pipeline;

public class LatentTilerTests(ITestOutputHelper output)
{
    [Theory]
    // SD's VAE keeps the reference's 96/32; other codecs get 1024/256 px in latent pixels, so a 720p frame is one tile.
    [InlineData(true, 8, null, null, 96, 32, 3)]
    [InlineData(false, 8, null, null, 128, 32, 1)]
    [InlineData(false, 4, null, null, 256, 64, 1)]
    [InlineData(false, 4, 32, null, 32, 10, 120)]   // an explicit small tile shrinks the default overlap to a third
    [InlineData(false, 4, 100, 20, 100, 20, 8)]
    public void Tile_defaults_follow_the_codec(bool sdVae, int factor, int? tile, int? overlap, int expectedTile, int expectedOverlap, int tiles720p)
    {
        var tiler = LatentTiler.ForCodec(tile, overlap, sdVae, factor);
        Assert.Equal(expectedTile, tiler.TileSize);
        Assert.Equal(expectedOverlap, tiler.Overlap);
        Assert.Equal(tiles720p, tiler.Plan(720 / factor, 1280 / factor).Count);
    }

    [Fact]
    public void An_explicit_overlap_that_does_not_fit_the_tile_is_an_option_error()
    {
        var e = Assert.Throws<UpscaleOptionsException>(() => LatentTiler.ForCodec(null, 96, isSdVae: true, codecFactor: 8));
        Assert.Equal("tile-overlap", e.OptionName);
        Assert.Contains("96", e.Message);
    }

    [Fact]
    public void Gaussian_weights_96_equal_the_reference_bit_for_bit()
    {
        using var f = GoldenData.Open("pipeline_bits", "case_pipeline_bits.safetensors");
        using var scope = NewDisposeScope();
        var expected = f.Load("tile.gaussian_weights_96");
        var actual = GaussianTileWeights.AsTensor(96, 96);
        Assert.Equal(ScalarType.Float64, actual.dtype);
        output.WriteLine($"gaussian_weights_96 max abs diff {TensorAssert.MaxAbsDiff(expected, actual):G3}");
        TensorAssert.Equal(expected, actual, "gaussian_weights_96");
        // The asymmetry is real: x symmetric around (w-1)/2, y not around (h-1)/2.
        Assert.Equal(actual[0, 0].item<double>(), actual[0, 95].item<double>());
        Assert.NotEqual(actual[0, 0].item<double>(), actual[95, 0].item<double>());
    }

    [Fact]
    public void Numpy_style_exp_is_within_a_few_ulp_of_libm()
    {
        int differing = 0;
        for (int i = 0; i <= 20000; i++)
        {
            double x = -30 + i * 0.00237;
            double a = GaussianTileWeights.NumpyExp(x), b = Math.Exp(x);
            double ulp = Math.BitIncrement(b) - b;
            Assert.True(Math.Abs(a - b) <= 4 * ulp, $"exp({x}): {a} vs {b}");
            if (a != b) differing++;
        }
        Assert.True(differing > 0, "identical to libm everywhere: the transcription would be pointless");
        Assert.Equal(1.0, GaussianTileWeights.NumpyExp(-0.0));
    }

    [Theory]
    [InlineData(96, 96, 1, 1)]    // h*w == tile²: one call on the whole latent
    [InlineData(64, 128, 1, 1)]   // non-square but h*w < tile²: untiled like the reference
    [InlineData(90, 160, 3, 1)]   // 720p: tile min(96, 90) = 90, 3 along x
    [InlineData(200, 250, 4, 3)]
    public void Plan_follows_the_reference_grid(int h, int w, int alongX, int alongY)
    {
        var tiler = new LatentTiler();
        var plan = tiler.Plan(h, w);
        Assert.Equal(alongX * alongY, plan.Count);
        int tile = tiler.NeedsTiling(h, w) ? Math.Min(96, Math.Min(h, w)) : 0;
        foreach (var t in plan)
        {
            Assert.InRange(t.X, 0, w - t.Width);
            Assert.InRange(t.Y, 0, h - t.Height);
            if (tile > 0) Assert.Equal((tile, tile), (t.Height, t.Width));
        }
        // Every latent pixel is covered.
        var covered = new bool[h, w];
        foreach (var t in plan)
            for (int y = t.Y; y < t.Y + t.Height; y++)
                for (int x = t.X; x < t.X + t.Width; x++) covered[y, x] = true;
        Assert.All(covered.Cast<bool>(), Assert.True);
        if (h == 200 && w == 250)
        {
            Assert.Equal(new[] { 0, 64, 128, 154 }, plan.Select(t => t.X).Distinct().ToArray());
            Assert.Equal(new[] { 0, 64, 104 }, plan.Select(t => t.Y).Distinct().ToArray());
        }
    }

    [Fact]
    public void Pointwise_function_tiled_equals_untiled()
    {
        using var scope = NewDisposeScope();
        var latent = randn(1, 4, 130, 170, generator: new Generator(3));
        static Tensor Fn(Tensor x) => x.tanh() * 2 - x * 0.5;
        var tiler = new LatentTiler(48, 16);
        int calls = 0;
        var tiled = tiler.Run(latent, x => { calls++; return Fn(x); });
        Assert.True(calls > 6, $"only {calls} tiles");
        TensorAssert.Close(Fn(latent), tiled, atol: 2e-6, rtol: 1e-6, what: "pointwise tiled");
    }

    [Fact]
    public void One_tile_covering_everything_is_exactly_the_function()
    {
        using var scope = NewDisposeScope();
        var latent = randn(2, 4, 60, 70, generator: new Generator(4));
        var conv = F.avg_pool2d(latent, 5, stride: 1, padding: 2);
        var tiled = new LatentTiler().Run(latent, x => F.avg_pool2d(x, 5, stride: 1, padding: 2));
        TensorAssert.Equal(conv, tiled, "untiled path");
    }

    [Fact]
    public void Convolution_like_function_blends_with_small_error_away_from_tile_borders()
    {
        using var scope = NewDisposeScope();
        // A smooth latent, like a real one, and a 5x5 blur: tiles see zero padding at their edges.
        var latent = F.avg_pool2d(randn(1, 4, 200, 260, generator: new Generator(6)), 9, stride: 1, padding: 4);
        static Tensor Blur(Tensor x) => F.avg_pool2d(x, 5, stride: 1, padding: 2, count_include_pad: false);
        var reference = Blur(latent);
        var tiled = new LatentTiler().Run(latent, Blur);
        var err = (tiled - reference).abs();
        // Away from the image border (where tiles and whole image agree anyway) the Gaussian blend hides tile seams.
        var inner = err[.., .., 8..^8, 8..^8];
        double scale = reference.abs().max().item<float>();
        double maxErr = inner.max().item<float>(), meanErr = inner.mean().item<float>();
        output.WriteLine($"blend error: max {maxErr:G3}, mean {meanErr:G3}, max |ref| {scale:G3}");
        Assert.True(maxErr < 0.05 * scale, $"max blend error {maxErr} vs {scale}");
        Assert.True(meanErr < 1e-3 * scale, $"mean blend error {meanErr} vs {scale}");
        Assert.True(err.max().item<float>() > 0, "tiles did not change anything: the test proves nothing");
    }

    [Fact]
    public void Tile_function_sees_matching_image_regions()
    {
        using var scope = NewDisposeScope();
        var latent = randn(1, 4, 100, 120, generator: new Generator(7));
        var image = randn(1, 3, 800, 960, generator: new Generator(8));
        var tiler = new LatentTiler();
        var result = tiler.Run(100, 120, tile =>
        {
            var img = tile.Slice(image, scale: 8);
            Assert.Equal(new long[] { 1, 3, tile.Height * 8, tile.Width * 8 }, img.shape);
            // Tile output = latent + the image's 8x8 average (a per-pixel function of aligned inputs).
            return tile.Slice(latent) + F.avg_pool2d(img, 8).mean([1L], keepdim: true);
        });
        var expected = latent + F.avg_pool2d(image, 8).mean([1L], keepdim: true);
        TensorAssert.Close(expected, result, atol: 2e-6, rtol: 1e-6, what: "aligned tiles");
    }

    [Fact]
    public void Invalid_settings_are_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new LatentTiler(32, 32));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LatentTiler(0, 0));
    }
}
