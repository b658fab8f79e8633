using Dloral.Checkpoints;
using Dloral.Diffusion;
using Dloral.Nn;
using Dloral.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Tests.Diffusion;

public class UNet2DConditionTests
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
        var output = unet.call(sample, timestep, context);
        TensorAssert.Close(golden.Load("out.sample"), output, 1e-5, 1e-4, $"tiny_unet {caseFile} out.sample");
    }
}
