using Dloral.Checkpoints;
using Dloral.Diffusion;
using Dloral.Nn;
using Dloral.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Diffusion;

public class UNet2DConditionTests(ITestOutputHelper output)
{
    internal static UNet2DCondition LoadTinyUNet(ModelOptions? options = null)
    {
        var unet = UNet2DCondition.FromConfigFile(GoldenData.PathOf("tiny_unet", "unet", "config.json"), options);
        using var weights = GoldenData.Open("tiny_unet", "unet", "diffusion_pytorch_model.safetensors");
        StateDictLoader.Load(unet, weights);
        unet.eval();
        return unet;
    }

    [Theory]
    [InlineData("case_b1_t1.safetensors")]
    [InlineData("case_b2_16x24.safetensors")]
    public void TinyUNet_matches_reference(string caseFile)
    {
        TorchRuntime.Initialize();
        using var unet = LoadTinyUNet();
        using var golden = GoldenData.Open("tiny_unet", caseFile);
        using var scope = NewDisposeScope();
        using var guard = inference_mode();
        var sample = golden.Load("in.sample");
        var timestep = golden.Load("in.timestep");
        var context = golden.Load("in.encoder_hidden_states");
        var result = unet.call(sample, timestep, context);
        var expected = golden.Load("out.sample");
        output.WriteLine($"tiny_unet {caseFile}: max |diff| {TensorAssert.MaxAbsDiff(expected, result):G3}");
        TensorAssert.Close(expected, result, 1e-5, 1e-4, $"tiny_unet {caseFile} out.sample");
    }

    [Fact]
    public void TinyUNet_intermediates_match_reference()
    {
        // The act.* hooks of the reference, recomputed piecewise: time embedding and the first down block's path.
        TorchRuntime.Initialize();
        using var unet = LoadTinyUNet();
        using var golden = GoldenData.Open("tiny_unet", "case_b1_t1.safetensors");
        using var scope = NewDisposeScope();
        using var guard = inference_mode();
        var modules = unet.named_modules().ToDictionary(m => m.name, m => m.module);
        var tProj = ((torch.nn.Module<Tensor, Tensor>)modules["time_proj"]).call(golden.Load("in.timestep"));
        TensorAssert.Close(golden.Load("act.time_proj"), tProj, 1e-6, 1e-5, "time_proj");
        var tEmb = ((torch.nn.Module<Tensor, Tensor>)modules["time_embedding"]).call(tProj);
        TensorAssert.Close(golden.Load("act.time_embedding"), tEmb, 1e-5, 1e-4, "time_embedding");
        var h = ((torch.nn.Module<Tensor, Tensor>)modules["conv_in"]).call(golden.Load("in.sample"));
        TensorAssert.Close(golden.Load("act.conv_in"), h, 1e-5, 1e-4, "conv_in");
        var r = ((Dloral.Nn.ResnetBlock2D)modules["down_blocks.0.resnets.0"]).call(h, tEmb);
        TensorAssert.Close(golden.Load("act.down_blocks.0.resnets.0"), r, 1e-5, 1e-4, "down_blocks.0.resnets.0");
        var a = ((Dloral.Nn.Transformer2DModel)modules["down_blocks.0.attentions.0"]).call(r, golden.Load("in.encoder_hidden_states"));
        TensorAssert.Close(golden.Load("act.down_blocks.0.attentions.0"), a, 1e-5, 1e-4, "down_blocks.0.attentions.0");
    }

    [Fact]
    public void TinyUNet_runs_in_bfloat16_close_to_float32()
    {
        TorchRuntime.Initialize();
        using var unet = LoadTinyUNet(new ModelOptions(DType: ScalarType.BFloat16));
        Assert.All(unet.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        using var golden = GoldenData.Open("tiny_unet", "case_b1_t1.safetensors");
        using var scope = NewDisposeScope();
        using var guard = inference_mode();
        var result = unet.call(golden.Load("in.sample", ScalarType.BFloat16), golden.Load("in.timestep"),
            golden.Load("in.encoder_hidden_states", ScalarType.BFloat16));
        Assert.Equal(ScalarType.BFloat16, result.dtype);
        var expected = golden.Load("out.sample");
        double maxDiff = TensorAssert.MaxAbsDiff(expected, result);
        double rel = ((result.to_type(ScalarType.Float32) - expected).norm() / expected.norm()).item<float>();
        output.WriteLine($"bf16 tiny_unet: max |diff| {maxDiff:G3}, relative L2 {rel:G3}");
        // bf16 keeps 8 mantissa bits (~0.4 % per rounding); a few % end to end is expected, a wrong op gives O(1).
        Assert.True(rel < 0.03, $"bf16 relative L2 error {rel}");
        TensorAssert.Close(expected, result, 0.1, 0.05, "bf16 vs fp32 reference");

        // Casting a loaded fp32 module (module.to) is the same as building in bf16.
        using var cast = LoadTinyUNet();
        cast.to(ScalarType.BFloat16);
        Assert.All(cast.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        var castResult = cast.call(golden.Load("in.sample", ScalarType.BFloat16), golden.Load("in.timestep"),
            golden.Load("in.encoder_hidden_states", ScalarType.BFloat16));
        TensorAssert.Equal(result, castResult, "module.to(bfloat16) vs bf16 build");
    }

    [Fact]
    public void Eight_channel_conv_in_with_zero_second_half_reproduces_the_four_channel_unet()
    {
        // DLoRAL widens conv_in to 8 channels; with the extra input channels' weights zeroed the output is unchanged.
        TorchRuntime.Initialize();
        var config = UNet2DConditionConfig.Load(GoldenData.PathOf("tiny_unet", "unet", "config.json")) with { InChannels = 8 };
        using var unet = new UNet2DCondition(config);
        using var weights = GoldenData.Open("tiny_unet", "unet", "diffusion_pytorch_model.safetensors");
        var result = StateDictLoader.Load(unet, weights, keyFilter: k => k != "conv_in.weight", strict: false);
        Assert.Equal(["conv_in.weight"], result.Missing);
        var convIn = unet.state_dict()["conv_in.weight"];
        Assert.Equal([16L, 8, 3, 3], convIn.shape);
        using (no_grad())
        {
            using var w4 = weights.Load("conv_in.weight");
            convIn.zero_();
            convIn.narrow(1, 0, 4).copy_(w4);
        }
        using var golden = GoldenData.Open("tiny_unet", "case_b1_t1.safetensors");
        using var scope = NewDisposeScope();
        using var guard = inference_mode();
        var sample = cat([golden.Load("in.sample"), randn(1, 4, 16, 16)], 1);
        var output8 = unet.call(sample, golden.Load("in.timestep"), golden.Load("in.encoder_hidden_states"));
        TensorAssert.Close(golden.Load("out.sample"), output8, 1e-5, 1e-4, "8-channel conv_in");
    }

    [Fact]
    public void Sizes_not_divisible_by_the_total_downsampling_use_explicit_upsample_sizes()
    {
        TorchRuntime.Initialize();
        using var unet = LoadTinyUNet();
        using var scope = NewDisposeScope();
        using var guard = inference_mode();
        var context = randn(2, 77, 32);
        var output = unet.call(randn(2, 4, 12, 20), tensor(500L), context);
        Assert.Equal([2L, 4, 12, 20], output.shape);
        Assert.False(output.isnan().any().item<bool>());
        // A scalar timestep is broadcast over the batch, like a [B] tensor of the same value.
        var sample = randn(2, 4, 16, 16);
        TensorAssert.Close(unet.call(sample, tensor(new long[] { 7, 7 }), context), unet.forward(sample, 7, context), 1e-6, 0, "scalar timestep");
    }

    [Fact]
    public void Channels_last_layout_gives_the_same_result()
    {
        TorchRuntime.Initialize();
        using var unet = LoadTinyUNet(new ModelOptions { ChannelsLast = true });
        Assert.True(Dloral.Nn.MemoryFormat.IsChannelsLast(unet.state_dict()["conv_in.weight"]));
        using (var fresh = new UNet2DCondition(unet.Config, new ModelOptions { ChannelsLast = true }))
        {
            // Random init happens in the channels-last layout: kaiming_uniform(a=√5) ⇒ |w| ≤ 1/√fan_in, as torch does.
            var w = fresh.state_dict()["down_blocks.0.resnets.0.conv1.weight"];
            double bound = 1 / Math.Sqrt(16 * 9);
            Assert.True(w.abs().max().item<float>() <= bound + 1e-6 && w.std().item<float>() > bound / 3);
        }
        using var golden = GoldenData.Open("tiny_unet", "case_b2_16x24.safetensors");
        using var scope = NewDisposeScope();
        using var guard = inference_mode();
        var result = unet.call(golden.Load("in.sample"), golden.Load("in.timestep"), golden.Load("in.encoder_hidden_states"));
        Assert.True(result.is_contiguous());
        TensorAssert.Close(golden.Load("out.sample"), result, 1e-5, 1e-4, "channels-last tiny_unet");
    }
}
