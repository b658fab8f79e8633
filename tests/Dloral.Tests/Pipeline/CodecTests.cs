using Dloral.Diffusion;
using Dloral.Pipeline;
using Dloral.Pipeline.Codecs;
using Dloral.Temporal;
using Dloral.Tests.Diffusion;
using Dloral.Tests.Support;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Pipeline;

public class CodecTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(2, true)]
    [InlineData(4, true)]
    [InlineData(4, false)]
    [InlineData(8, true)]
    [InlineData(8, false)]
    public void PixelUnshuffle_round_trip_is_exact(int factor, bool mixing)
    {
        TorchRuntime.Initialize();
        using var scope = NewDisposeScope();
        using var codec = new PixelUnshuffleCodec(factor, mixing);
        var images = rand(new long[] { 2, 3, 6 * factor, 5 * factor }, generator: new Generator(7)).mul(2).sub(1);
        var latent = codec.Encode(images);
        Assert.Equal(new long[] { 2, 3 * factor * factor, 6, 5 }, latent.shape);
        var back = codec.Decode(latent);
        double diff = TensorAssert.MaxAbsDiff(images, back);
        output.WriteLine($"f={factor} mixing={mixing}: max |round trip − input| {diff:G3}");
        Assert.True(diff <= 1e-6, $"round trip error {diff:G3} > 1e-6");
        // Lossless means invertible, not merely "close on average": a one-pixel change must come back as that change.
        var poked = images.clone();
        poked[1, 2, 3, 4] = poked[1, 2, 3, 4] + 0.5;
        Assert.True(TensorAssert.MaxAbsDiff(codec.Decode(codec.Encode(poked)), poked) <= 1e-6);
    }

    [Fact]
    public void Plain_unshuffle_is_torch_pixel_unshuffle_order_and_scaled()
    {
        using var scope = NewDisposeScope();
        using var codec = new PixelUnshuffleCodec(2, orthonormalMixing: false, scalingFactor: 1.0);
        var img = arange(3 * 4 * 4, dtype: ScalarType.Float32).view(1, 3, 4, 4);
        var lat = codec.Encode(img);
        // channel c·f² + y·f + x holds pixel (2i+y, 2j+x) of colour c.
        Assert.Equal(img[0, 1, 2 + 1, 0 + 1].item<float>(), lat[0, 1 * 4 + 1 * 2 + 1, 1, 0].item<float>());
        Assert.Equal(img[0, 2, 0, 3].item<float>(), lat[0, 2 * 4 + 0 * 2 + 1, 0, 1].item<float>());
        using var half = new PixelUnshuffleCodec(2, orthonormalMixing: false);
        Assert.Equal(0.5, half.ScalingFactor);
        TensorAssert.Close(lat * 0.5, half.Encode(img), 0, 0, "scaling 1/f");
    }

    [Fact]
    public void Mixing_is_orthonormal_with_the_grey_mean_in_channel_0()
    {
        using var scope = NewDisposeScope();
        var m = PixelUnshuffleCodec.MixingMatrix(8).to_type(ScalarType.Float64);
        Assert.Equal(new long[] { 192, 192 }, m.shape);
        TensorAssert.Close(eye(192, dtype: ScalarType.Float64), m.matmul(m.t()), 1e-6, 0, "M·Mᵀ = I");
        using var codec = new PixelUnshuffleCodec(8);
        // The separable implementation is the matrix: encode = scale · M · plain unshuffle.
        using var plain = new PixelUnshuffleCodec(8, orthonormalMixing: false, scalingFactor: 1.0);
        var img = rand(new long[] { 1, 3, 16, 24 }, generator: new Generator(5));
        var viaMatrix = nn.functional.conv2d(plain.Encode(img), m.to_type(ScalarType.Float32).view(192, 192, 1, 1)) * codec.ScalingFactor;
        TensorAssert.Close(viaMatrix, codec.Encode(img), 1e-6, 0, "separable mixing = MixingMatrix");
        var grey = full(new long[] { 1, 3, 16, 24 }, 0.25f);
        var lat = codec.Encode(grey);
        // Constant grey v: channel 0 = √3·v (luma DC, scaled by 1/f), every other channel 0.
        TensorAssert.Close(full(new long[] { 1, 1, 2, 3 }, (float)(Math.Sqrt(3) * 0.25)), lat.narrow(1, 0, 1), 1e-6, 0, "luma DC");
        Assert.True(lat.narrow(1, 1, 191).abs().max().item<float>() < 1e-6, "non-DC channels of a flat image must be 0");
    }

    [Fact]
    public void PixelUnshuffle_rejects_sizes_not_divisible_and_wrong_channels()
    {
        using var scope = NewDisposeScope();
        using var codec = new PixelUnshuffleCodec(8);
        var e = Assert.Throws<ArgumentException>(() => codec.Encode(zeros(1, 3, 36, 64)));
        Assert.Contains("36x64", e.Message);
        Assert.Contains("multiple of the factor 8", e.Message);
        Assert.Throws<ArgumentException>(() => codec.Encode(zeros(1, 4, 64, 64)));
        Assert.Throws<ArgumentException>(() => codec.Decode(zeros(1, 48, 4, 4)));
    }

    [Theory]
    [InlineData("case_b1_32.safetensors")]
    [InlineData("case_b2_48x64.safetensors")]
    public void VaeLatentCodec_is_mean_times_scaling_and_decode_of_latent_over_scaling(string caseFile)
    {
        TorchRuntime.Initialize();
        using var codec = new VaeLatentCodec(AutoencoderKLTests.LoadTinyVae());
        using var golden = GoldenData.Open("tiny_vae", caseFile);
        using var scope = NewDisposeScope();
        using var guard = inference_mode();
        Assert.Equal(8, codec.DownscaleFactor);
        Assert.Equal(4, codec.LatentChannels);
        TensorAssert.Close(golden.Load("out.mean_scaled"), codec.Encode(golden.Load("in.image")), 1e-5, 1e-4, $"{caseFile} encode");
        var latent = golden.Load("in.latent");
        TensorAssert.Close(golden.Load("out.decoded"), codec.Decode(latent * codec.ScalingFactor), 1e-5, 1e-4, $"{caseFile} decode");
    }

    [Fact]
    public void DloralModel_checks_the_unet_and_cfr_against_the_codec()
    {
        TorchRuntime.Initialize();
        using var model = DloralModelTests.LoadGoldenModel();
        Assert.IsType<VaeLatentCodec>(model.Codec);
        Assert.Equal(4, model.LatentChannels);
        // The golden 8-channel UNet does not fit a 192-channel codec: refused with the channel counts named.
        var e = Assert.Throws<ArgumentException>(() => new DloralModel(new PixelUnshuffleCodec(8), model.Unet, model.Cfr));
        Assert.Contains("384", e.Message);
    }
}
