using Dloral.Lora;
using Dloral.Pipeline;
using Dloral.Pipeline.Compact;
using Dloral.Tests.Support;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Pipeline;

/// <summary>Deepening a trained compact model (<see cref="CompactGrowth"/>): more resnets per block, the same output.</summary>
public class CompactGrowthTests(ITestOutputHelper output)
{
    private static string Folder => Path.Combine(GoldenData.RepoRoot, "models", "compact");

    /// <summary>
    /// The seeded one-resnet model of models/compact with every weight that starts at zero (conv_out, the adapters' B
    /// matrices, SPyNet's last convs) set to small seeded values, so it predicts a real correction through all six
    /// adapters like a trained model (the shipped weights are already deepened, so they cannot be the source).
    /// </summary>
    internal static CompactDloral TrainedLikeSource()
    {
        var model = CompactDloral.Build(Folder);
        using var g = new Generator(5);
        using var noGrad = no_grad();
        foreach (var (_, w) in model.NamedWeights())
            if (w.abs().max().item<float>() == 0) w.copy_(randn(w.shape, generator: g).mul_(0.02));
        return model;
    }

    internal static Tensor LrWindow(long h, long w)
    {
        using var g = new Generator(11);
        // A smooth moving pattern with noise, in [−1, 1]: the trained UNet, flow and CFR all see real structure.
        var frame = rand([1, 1, 3, h / 4, w / 4], generator: g).mul(2).sub(1);
        var big = nn.functional.interpolate(frame.view(1, 3, h / 4, w / 4), size: [h, w], mode: InterpolationMode.Bicubic, align_corners: false);
        var noise = rand([1, 3, h, w], generator: g).sub(0.5).mul(0.2);
        var a = (big + noise).clamp(-1, 1);
        var b = roll(a, [1, 2], [2, 3]);
        return stack([a, b], 1);
    }

    [Fact]
    public void A_deepened_trained_model_computes_the_same_output_and_has_more_resnets()
    {
        TorchRuntime.Initialize();
        using var source = TrainedLikeSource();
        Assert.All(source.Config.Unet.LayersPerBlock, l => Assert.Equal(1L, l));
        using var grown = CompactGrowth.Deepen(source, 2);
        Assert.All(grown.Config.Unet.LayersPerBlock, l => Assert.Equal(2L, l));
        Assert.Contains("\"layers_per_block\": 2", grown.Config.UnetJson);
        long before = source.NamedWeights().Sum(kv => kv.Value.numel()), after = grown.NamedWeights().Sum(kv => kv.Value.numel());
        output.WriteLine($"weights {before:N0} → {after:N0}");
        Assert.True(after > before * 5 / 4, $"{after} weights after deepening vs {before}");
        var names = grown.NamedWeights().Select(kv => kv.Key).ToHashSet();
        Assert.Contains("unet.down_blocks.2.resnets.1.conv2.base_layer.weight", names);
        Assert.Contains("unet.up_blocks.0.resnets.2.conv1.base_layer.weight", names);

        // All six adapters active (the training forward), so the trained LoRA weights must have moved with their layers.
        foreach (var m in new[] { source, grown }) m.Model.Configure(new DloralAdapterOptions(DloralStage.Full));
        using var scope = NewDisposeScope();
        using var guard = inference_mode();
        var lr = LrWindow(48, 64);
        using var a = source.Upscale(lr);
        using var b = grown.Upscale(lr);
        double predScale = a.ModelPred.abs().max().item<float>();
        output.WriteLine($"|ε̂| max {predScale:G3}, max |diff| ε̂ {TensorAssert.MaxAbsDiff(a.ModelPred, b.ModelPred):G3}, image {TensorAssert.MaxAbsDiff(a.OutputImage, b.OutputImage):G3}");
        Assert.True(predScale > 1e-2, "the trained model predicts a real correction");
        TensorAssert.Close(a.ModelPred, b.ModelPred, 1e-5, 1e-4, "UNet prediction");
        TensorAssert.Close(a.OutputImage, b.OutputImage, 1e-5, 1e-4, "output image");

        // The new layers are trainable: a change to a new resnet's conv2 changes the output.
        using (no_grad())
            grown.NamedWeights().First(kv => kv.Key == "unet.up_blocks.1.resnets.1.conv2.base_layer.bias").Value.add_(0.01);
        using var c = grown.Upscale(lr);
        Assert.True(TensorAssert.MaxAbsDiff(b.OutputImage, c.OutputImage) > 1e-4);
    }

    [Fact]
    public void Deepening_rejects_fewer_layers_and_leaves_equal_depth_unchanged()
    {
        TorchRuntime.Initialize();
        using var source = TrainedLikeSource();
        using var two = CompactGrowth.Deepen(source, 2);
        var e = Assert.Throws<ArgumentException>(() => CompactGrowth.Deepen(two, 1));
        Assert.Contains("already has [2, 2, 2]", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => CompactGrowth.Deepen(source, 0));
        using var same = CompactGrowth.Deepen(source, 1);
        var w = source.NamedWeights().ToDictionary(kv => kv.Key, kv => kv.Value);
        foreach (var (name, t) in same.NamedWeights()) Assert.True(TensorAssert.MaxAbsDiff(w[name], t) == 0, name);
    }
}
