using Dloral.Pipeline;
using Dloral.Pipeline.Compact;
using Dloral.Tests.Support;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Pipeline;

/// <summary>Widening a trained compact model (<see cref="CompactWidening"/>): more channels per level, the same output.</summary>
public class CompactWideningTests(ITestOutputHelper output)
{
    private static (DloralStepResult a, DloralStepResult b) Both(CompactDloral source, CompactDloral wide)
    {
        foreach (var m in new[] { source, wide }) m.Model.Configure(new DloralAdapterOptions(DloralStage.Full));
        using var guard = inference_mode();
        var lr = CompactGrowthTests.LrWindow(48, 64);
        return (source.Upscale(lr), wide.Upscale(lr));
    }

    /// <summary>
    /// Every GroupNorm of the model normalises each channel on its own (groups = channels, set through reflection): then a
    /// copied channel has its original's statistics whatever the group layout, and a widened model must compute exactly
    /// what its source does. This checks every mapped weight (rows, split columns, the [hidden ‖ skip] inputs, the folded
    /// timestep embedding) apart from GroupNorm's grouping itself.
    /// </summary>
    private static void NormalisePerChannel(CompactDloral model)
    {
        var field = typeof(Dloral.Nn.GroupNorm).GetField("_groups", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)!;
        int count = 0;
        foreach (var (_, module) in model.Model.Unet.named_modules())
            if (module is Dloral.Nn.GroupNorm norm)
            {
                field.SetValue(norm, norm.parameters().First().shape[0]);
                count++;
            }
        Assert.True(count > 10, $"{count} GroupNorms");
    }

    [Theory]
    [InlineData(64, 96)]
    [InlineData(96, 192)]
    [InlineData(48, 112)]
    public void A_widened_model_computes_the_same_output_when_norms_see_their_channels_alone(long c0, long c1)
    {
        TorchRuntime.Initialize();
        using var scope = NewDisposeScope();
        using var source = CompactGrowthTests.TrainedLikeSource();
        using var wide = CompactWidening.Widen(source, [c0, c1, 128]);
        Assert.Equal([c0, c1, 128L], wide.Config.Unet.BlockOutChannels);
        Assert.Equal(192L, wide.Config.Unet.TimeEmbeddingDim);
        Assert.Contains("\"time_embedding_dim\": 192", wide.Config.UnetJson);
        long before = source.NamedWeights().Sum(kv => kv.Value.numel()), after = wide.NamedWeights().Sum(kv => kv.Value.numel());
        output.WriteLine($"weights {before:N0} → {after:N0}");
        Assert.True(after > before, $"{after} weights after widening vs {before}");

        NormalisePerChannel(source);
        NormalisePerChannel(wide);
        var (a, b) = Both(source, wide);
        using (a) using (b)
        {
            double predScale = a.ModelPred.abs().max().item<float>();
            output.WriteLine($"|ε̂| max {predScale:G3}, max |diff| ε̂ {TensorAssert.MaxAbsDiff(a.ModelPred, b.ModelPred):G3}");
            Assert.True(predScale > 1e-2, "the trained model predicts a real correction");
            TensorAssert.Close(a.ModelPred, b.ModelPred, 1e-4, 1e-4, "UNet prediction");
            TensorAssert.Close(a.OutputImage, b.OutputImage, 1e-4, 1e-4, "output image");
        }
    }

    [Fact]
    public void Widening_by_a_fraction_stays_close_and_the_new_channels_train()
    {
        TorchRuntime.Initialize();
        using var scope = NewDisposeScope();
        using var source = CompactGrowthTests.TrainedLikeSource();
        using var wide = CompactWidening.Widen(source, [64, 96, 128]);
        var (a, b) = Both(source, wide);
        using (a) using (b)
        {
            // With 16 groups, a group now holds one old channel twice: its statistics move, so the output does, by less
            // than a fresh network's would.
            double scale = a.ModelPred.abs().max().item<float>(), diff = TensorAssert.MaxAbsDiff(a.ModelPred, b.ModelPred);
            double rel = (a.ModelPred - b.ModelPred).norm().item<float>() / a.ModelPred.norm().item<float>();
            output.WriteLine($"|ε̂| max {scale:G3}, max |diff| {diff:G3}, relative L2 {rel:G3}");
            Assert.True(diff > 0, "a fractional widening moves GroupNorm's statistics");
            Assert.True(rel < 0.5, $"relative change of ε̂ {rel:G3}");

            // conv_out reads level 0: new channel 1 copies old channel 0 (⌊1·48/64⌋), as channel 0 does. The two read
            // weights are unequal random parts of the old one, so the copies get different gradients and learn apart.
            var before = source.NamedWeights().First(kv => kv.Key == "unet.conv_out.base_layer.weight").Value;
            var after = wide.NamedWeights().First(kv => kv.Key == "unet.conv_out.base_layer.weight").Value;
            TensorAssert.Close(before.select(1, 0), after.select(1, 0) + after.select(1, 1), 1e-6, 1e-5, "the parts sum to the old weight");
            Assert.True(TensorAssert.MaxAbsDiff(after.select(1, 0), after.select(1, 1)) > 1e-4, "the parts differ");

            // A change to one new channel's weights changes the output.
            using (no_grad())
                wide.NamedWeights().First(kv => kv.Key == "unet.down_blocks.0.resnets.0.conv1.base_layer.bias").Value[63].add_(0.5);
            using var guard = inference_mode();
            using var c = wide.Upscale(CompactGrowthTests.LrWindow(48, 64));
            Assert.True(TensorAssert.MaxAbsDiff(b.OutputImage, c.OutputImage) > 1e-5);
        }
    }

    [Fact]
    public void Widening_rejects_narrowing_the_attention_level_and_bad_group_counts()
    {
        TorchRuntime.Initialize();
        using var source = CompactGrowthTests.TrainedLikeSource();
        Assert.Contains("cannot narrow level 0", Assert.Throws<ArgumentException>(() => CompactWidening.Widen(source, [32, 96, 128])).Message);
        Assert.Contains("the model has 3", Assert.Throws<ArgumentException>(() => CompactWidening.Widen(source, [64, 96])).Message);
        Assert.Contains("16 GroupNorm groups", Assert.Throws<ArgumentException>(() => CompactWidening.Widen(source, [56, 96, 128])).Message);
        Assert.Contains("conv_shortcut", Assert.Throws<NotSupportedException>(() => CompactWidening.Widen(source, [96, 96, 128])).Message);
        Assert.Contains("mid block", Assert.Throws<NotSupportedException>(() => CompactWidening.Widen(source, [48, 96, 144])).Message);
        using var same = CompactWidening.Widen(source, [48, 96, 128]);
        var w = source.NamedWeights().ToDictionary(kv => kv.Key, kv => kv.Value);
        foreach (var (name, t) in same.NamedWeights()) Assert.True(TensorAssert.MaxAbsDiff(w[name], t) == 0, name);
    }
}
