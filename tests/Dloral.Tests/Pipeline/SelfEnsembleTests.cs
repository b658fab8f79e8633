using Dloral.Pipeline;
using Dloral.Pipeline.Codecs;
using Dloral.Pipeline.Compact;
using Dloral.Tests.Cli;
using Dloral.Tests.Support;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Pipeline;

/// <summary>Geometric self-ensemble: the eight dihedral views, exact latent views through the lossless codec, the averaged UNet.</summary>
[Collection("DloralEndToEnd")]
public class SelfEnsembleTests(ITestOutputHelper output)
{
    [Fact]
    public void The_eight_views_are_distinct_and_each_inverts_exactly()
    {
        using var scope = NewDisposeScope();
        var x = arange(2 * 3 * 5, dtype: ScalarType.Float32).reshape(1, 2, 3, 5);
        var views = new List<Tensor>();
        for (int k = 0; k < 8; k++)
        {
            var v = SelfEnsemble.Apply(x, k);
            Assert.Equal(k >= 4 ? new long[] { 1, 2, 5, 3 } : [1, 2, 3, 5], v.shape);
            TensorAssert.Equal(x, SelfEnsemble.Invert(v, k), $"view {k} inverted");
            Assert.DoesNotContain(views, u => u.shape.SequenceEqual(v.shape) && u.eq(v).all().item<bool>());
            views.Add(v);
        }
        // View 1 is the mirror (columns reversed), view 4 the transpose.
        Assert.Equal(4f, SelfEnsemble.Apply(x, 1)[0, 0, 0, 0].item<float>());
        Assert.Equal(5f, SelfEnsemble.Apply(x, 4)[0, 0, 0, 1].item<float>());
    }

    [Fact]
    public void An_equivariant_function_is_unchanged_and_a_position_bias_is_averaged_over_the_views()
    {
        using var scope = NewDisposeScope();
        var x = randn(1, 3, 6, 8, generator: new TorchSharp.torch.Generator(3));
        foreach (int size in SelfEnsemble.Sizes)
            TensorAssert.Close(x * 2 + 1, SelfEnsemble.Predict(y => y * 2 + 1, x, size), 1e-6, 0, $"size {size}");
        // f adds a ramp along the width: the mirror view sees it reversed, so the pair averages to the ramp's mean.
        Tensor Ramp(Tensor y) => arange(y.shape[3], dtype: y.dtype).view(1, 1, 1, -1);
        var two = SelfEnsemble.Predict(y => y + Ramp(y), x, 2);
        TensorAssert.Close(x + 3.5, two, 1e-6, 0, "size 2: ramp 0..7 averages to 3.5 everywhere");
        Assert.Throws<ArgumentOutOfRangeException>(() => SelfEnsemble.Predict(y => y, x, 3));
        var e = Assert.Throws<UpscaleOptionsException>(() => new DloralVideoOptions { SelfEnsemble = 3 }.Validate());
        Assert.Contains("self-ensemble", e.Message);
    }

    [Theory]
    [InlineData(4)]
    [InlineData(8)]
    public void The_lossless_codec_gives_the_exact_latent_of_each_mirrored_or_rotated_image(int factor)
    {
        using var scope = NewDisposeScope();
        using var codec = new PixelUnshuffleCodec(factor);
        var image = rand(1, 3, 2 * factor, 3 * factor, generator: new TorchSharp.torch.Generator(5)).mul_(2).sub_(1);
        var z = codec.Encode(image);
        for (int k = 0; k < 8; k++)
        {
            var expected = codec.Encode(SelfEnsemble.Apply(image, k));
            TensorAssert.Close(expected, codec.Dihedral(z, k), 1e-5, 0, $"view {k}");
            TensorAssert.Close(z, codec.Dihedral(expected, k, inverse: true), 1e-5, 0, $"view {k} inverted");
        }
        // Why the codec does it: mirroring the latent grid alone is not the latent of the mirrored image.
        double gridOnly = TensorAssert.MaxAbsDiff(codec.Encode(SelfEnsemble.Apply(image, 1)), SelfEnsemble.Apply(z, 1));
        Assert.True(gridOnly > 0.01, $"grid-only mirror differs by {gridOnly}");
    }

    [Fact]
    public void The_upscaler_averages_the_unet_over_the_mirrored_frame()
    {
        TorchRuntime.Initialize();
        using var media = new TestMedia();
        string path = media.PathOf("compact.safetensors");
        using (var built = CompactDloral.Build(Path.Combine(GoldenData.RepoRoot, "models", "compact"))) built.Save(path);
        using var compact = CompactDloral.Load(path);
        CompactPerturbation.PerturbConvOut(compact.Model.Unet, 7); // not flip-equivariant
        var frames = UpscalerDriver.Clip(media, "testsrc2=s=64x48:r=25,rotate=a=0.1*n", 3);
        var mirrored = frames.Select(f => f.flip(2)).ToList();
        var options = new DloralVideoOptions { MinimumProcessSide = 64, ColorFix = ColorFixMethod.None, FrameByFrame = true };
        List<Tensor> plain, ofMirror, ensemble;
        using (var up = new DloralUpscaler(compact, options, ownsModel: false)) plain = UpscalerDriver.Run(up, frames);
        using (var up = new DloralUpscaler(compact, options, ownsModel: false)) ofMirror = UpscalerDriver.Run(up, mirrored);
        using (var up = new DloralUpscaler(compact, options with { SelfEnsemble = 2 }, ownsModel: false)) ensemble = UpscalerDriver.Run(up, frames);
        for (int i = 0; i < frames.Count; i++)
        {
            using var scope = NewDisposeScope();
            // The codec and decode are linear, so the ensemble is the mean of the two restorations where neither was clamped.
            var mean = (plain[i] + ofMirror[i].flip(2)) / 2;
            var inside = plain[i].gt(0.001).logical_and(plain[i].lt(0.999)).logical_and(ofMirror[i].flip(2).gt(0.001)).logical_and(ofMirror[i].flip(2).lt(0.999));
            double err = (ensemble[i] - mean).abs().masked_select(inside).max().item<float>();
            double spread = (plain[i] - ofMirror[i].flip(2)).abs().mean().item<float>();
            output.WriteLine($"frame {i}: ensemble vs mean of views max |diff| {err:E2} (the views differ by {spread:E2} on average)");
            Assert.True(spread > 1e-4, "the perturbed model is not mirror-equivariant, so the test can tell the views apart");
            Assert.True(err < 2e-5, $"frame {i}: ensemble is not the mean of the views ({err})");
        }
        foreach (var t in plain.Concat(ofMirror).Concat(ensemble).Concat(frames).Concat(mirrored)) t.Dispose();
    }

    [Fact]
    public void The_cli_takes_self_ensemble_sizes_1_2_4_8_and_rejects_others()
    {
        using var media = new TestMedia();
        var input = media.Video("in.mkv", rate: "25", frames: 2, codec: "ffv1");
        var weights = GoldenData.ShippedCompactWeights;
        var bad = CliRunner.Run("upscale", input, "-o", media.PathOf("bad.mkv"), "--model", weights, "--self-ensemble", "3", "--progress", "none");
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("self-ensemble", bad.ToString());
        Assert.False(File.Exists(media.PathOf("bad.mkv")));
        var ok = CliRunner.Run("upscale", input, "-o", media.PathOf("out") + "/", "--model", weights, "--min-size", "64", "--self-ensemble", "2", "--progress", "none");
        Assert.True(ok.ExitCode == 0, ok.ToString());
        Assert.Equal(2, Directory.GetFiles(media.PathOf("out"), "*.png").Length);
    }
}
