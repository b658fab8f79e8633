using Dloral.Diffusion;
using Dloral.Tests.Support;
using static TorchSharp.torch;

namespace Dloral.Tests.Diffusion;

public class AutoencoderKLTests(Xunit.Abstractions.ITestOutputHelper output)
{
    internal static AutoencoderKL LoadTinyVae(Dloral.Nn.ModelOptions? options = null)
    {
        var vae = AutoencoderKL.FromConfigFile(GoldenData.PathOf("tiny_vae", "vae", "config.json"), options);
        using var weights = GoldenData.Open("tiny_vae", "vae", "diffusion_pytorch_model.safetensors");
        StateDictLoader.Load(vae, weights);
        vae.eval();
        return vae;
    }

    [Theory]
    [InlineData("case_b1_32.safetensors")]
    [InlineData("case_b2_48x64.safetensors")]
    public void TinyVae_matches_reference(string caseFile)
    {
        TorchRuntime.Initialize();
        using var vae = LoadTinyVae();
        Assert.Equal(0.18215, vae.ScalingFactor);
        using var golden = GoldenData.Open("tiny_vae", caseFile);
        using var scope = NewDisposeScope();
        using var guard = inference_mode();
        var image = golden.Load("in.image");
        var moments = vae.EncodeMoments(image);
        TensorAssert.Close(golden.Load("out.moments"), moments, 1e-5, 1e-4, $"{caseFile} moments");
        using var posterior = new DiagonalGaussian(moments);
        TensorAssert.Close(golden.Load("out.mean"), posterior.Mean, 1e-5, 1e-4, $"{caseFile} mean");
        TensorAssert.Close(golden.Load("out.logvar"), posterior.LogVar, 1e-5, 1e-4, $"{caseFile} logvar");
        TensorAssert.Close(golden.Load("out.std"), posterior.Std, 1e-5, 1e-4, $"{caseFile} std");
        TensorAssert.Close(golden.Load("out.mean_scaled"), posterior.Mean * vae.ScalingFactor, 1e-5, 1e-4, $"{caseFile} mean_scaled");
        var decoded = vae.Decode(golden.Load("in.latent"));
        output.WriteLine($"tiny_vae {caseFile}: moments max|diff| {TensorAssert.MaxAbsDiff(golden.Load("out.moments"), moments):G3}, " +
            $"std {TensorAssert.MaxAbsDiff(golden.Load("out.std"), posterior.Std):G3}, decoded {TensorAssert.MaxAbsDiff(golden.Load("out.decoded"), decoded):G3}");
        TensorAssert.Close(golden.Load("out.decoded"), decoded, 1e-5, 1e-4, $"{caseFile} decoded");
    }

    [Fact]
    public void Seeded_sampling_is_reproducible_and_uses_std()
    {
        using var scope = NewDisposeScope();
        var moments = cat([zeros(1, 4, 3, 3), full(new long[] { 1, 4, 3, 3 }, Math.Log(4.0))], 1);
        using var posterior = new DiagonalGaussian(moments);
        var a = posterior.Sample(new Generator(42));
        var b = posterior.Sample(new Generator(42));
        TensorAssert.Equal(a, b, "same seed");
        var eps = randn(new long[] { 1, 4, 3, 3 }, generator: new Generator(42));
        TensorAssert.Close(eps * 2.0, a, 1e-6, 0, "mean + std·eps with std = 2");
        // logvar clamp
        using var clamped = new DiagonalGaussian(cat([zeros(1, 1, 1, 1), full(new long[] { 1, 1, 1, 1 }, 50.0)], 1));
        Assert.Equal(20.0, clamped.LogVar.item<float>(), 5);
        TensorAssert.Equal(posterior.Mean, posterior.Mode(), "mode is the mean");
    }

    [Fact]
    public void Channels_last_layout_gives_the_same_result()
    {
        TorchRuntime.Initialize();
        using var vae = LoadTinyVae(new Dloral.Nn.ModelOptions { ChannelsLast = true });
        using var golden = GoldenData.Open("tiny_vae", "case_b2_48x64.safetensors");
        using var scope = NewDisposeScope();
        using var guard = inference_mode();
        TensorAssert.Close(golden.Load("out.moments"), vae.EncodeMoments(golden.Load("in.image")), 1e-5, 1e-4, "channels-last moments");
        TensorAssert.Close(golden.Load("out.decoded"), vae.Decode(golden.Load("in.latent")), 1e-5, 1e-4, "channels-last decoded");
    }
}
