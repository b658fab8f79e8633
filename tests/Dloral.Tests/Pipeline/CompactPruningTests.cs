using Dloral.Lora;
using Dloral.Pipeline;
using Dloral.Pipeline.Compact;
using Dloral.Tests.Support;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Pipeline;

/// <summary>Pruning a trained compact model (<see cref="CompactPruning"/>): fewer resnets per block, no mid block.</summary>
public class CompactPruningTests(ITestOutputHelper output)
{
    private static Dictionary<string, Tensor> Weights(CompactDloral m) => m.NamedWeights().ToDictionary(kv => kv.Key, kv => kv.Value);

    [Fact]
    public void Pruning_a_deepened_model_back_to_one_resnet_per_block_restores_every_weight()
    {
        TorchRuntime.Initialize();
        using var source = CompactGrowthTests.TrainedLikeSource();
        using var grown = CompactGrowth.Deepen(source, 2);
        // Train-like change to the kept layers of the deep model: pruning must copy them, not the source's.
        using (no_grad())
            Weights(grown)["unet.up_blocks.1.resnets.2.conv1.base_layer.weight"].add_(0.5);
        using var pruned = CompactPruning.Prune(grown, 1, dropMidBlock: false);
        Assert.All(pruned.Config.Unet.LayersPerBlock, l => Assert.Equal(1L, l));
        Assert.Contains("\"layers_per_block\": 1", pruned.Config.UnetJson);

        var s = Weights(source);
        var p = Weights(pruned);
        var g = Weights(grown);
        Assert.Equal(s.Keys.Order(), p.Keys.Order());
        foreach (var (name, t) in p)
        {
            // up k=1 of the pruned model is up k=2 of the deep one (the resnet between them was the one deepening added).
            var from = name.Replace(".resnets.1.", ".resnets.2.", StringComparison.Ordinal);
            var expected = name.StartsWith("unet.up_blocks.", StringComparison.Ordinal) && name.Contains(".resnets.1.", StringComparison.Ordinal) ? g[from] : g[name];
            Assert.True(TensorAssert.MaxAbsDiff(expected, t) == 0, name);
        }
        Assert.True(TensorAssert.MaxAbsDiff(s["unet.up_blocks.1.resnets.1.conv1.base_layer.weight"], p["unet.up_blocks.1.resnets.1.conv1.base_layer.weight"]) > 0.4);
        Assert.True(TensorAssert.MaxAbsDiff(s["unet.up_blocks.0.resnets.1.conv1.base_layer.weight"], p["unet.up_blocks.0.resnets.1.conv1.base_layer.weight"]) == 0);
    }

    [Fact]
    public void Dropping_an_identity_mid_block_keeps_the_output_and_the_file_round_trips()
    {
        TorchRuntime.Initialize();
        using var source = CompactGrowthTests.TrainedLikeSource();
        // Make the mid block the identity: its resnets add conv2(…) = 0, its transformer adds proj_out(…) = 0.
        using (no_grad())
            foreach (var (name, t) in source.NamedWeights())
                if (name.StartsWith("unet.mid_block.", StringComparison.Ordinal) &&
                    (name.Contains(".conv2.base_layer.", StringComparison.Ordinal) || name.Contains(".conv2.lora_B.", StringComparison.Ordinal) ||
                     name.Contains(".proj_out.base_layer.", StringComparison.Ordinal) || name.Contains(".proj_out.lora_B.", StringComparison.Ordinal)))
                    t.zero_();
        using var pruned = CompactPruning.Prune(source, null, dropMidBlock: true);
        Assert.Null(pruned.Config.Unet.MidBlockType);
        Assert.Contains("\"mid_block_type\": null", pruned.Config.UnetJson);
        var names = Weights(pruned).Keys.ToList();
        Assert.DoesNotContain(names, n => n.Contains("mid_block", StringComparison.Ordinal));
        // Nothing is left for the "others" adapters (they lived on the mid block): the other four remain.
        var adapters = LoraModel.AdapterNames(pruned.Model.Unet);
        Assert.DoesNotContain(DloralAdapters.OthersQuality, adapters);
        Assert.Contains(DloralAdapters.DecoderQuality, adapters);
        Assert.Contains(DloralAdapters.EncoderConsistency, adapters);
        long before = source.NamedWeights().Sum(kv => kv.Value.numel()), after = pruned.NamedWeights().Sum(kv => kv.Value.numel());
        output.WriteLine($"weights {before:N0} → {after:N0}");

        foreach (var m in new[] { source, pruned }) m.Model.Configure(new DloralAdapterOptions(DloralStage.Full));
        using var scope = NewDisposeScope();
        using var guard = inference_mode();
        var lr = CompactGrowthTests.LrWindow(48, 64);
        using var a = source.Upscale(lr);
        using var b = pruned.Upscale(lr);
        Assert.True(a.ModelPred.abs().max().item<float>() > 1e-2, "the model predicts a real correction");
        TensorAssert.Close(a.ModelPred, b.ModelPred, 1e-5, 1e-4, "UNet prediction");
        TensorAssert.Close(a.OutputImage, b.OutputImage, 1e-5, 1e-4, "output image");

        // Saved and loaded (the weights file records mid_block_type null), merged for inference: the same output.
        var dir = Directory.CreateTempSubdirectory("dloral-pruned-");
        try
        {
            var path = Path.Combine(dir.FullName, "pruned.safetensors");
            pruned.Save(path);
            using var loaded = CompactDloral.Load(path);
            Assert.Null(loaded.Config.Unet.MidBlockType);
            loaded.Model.Configure(new DloralAdapterOptions(DloralStage.Full, MergeAdapters: true));
            using var c = loaded.Upscale(lr);
            // Merging folds the adapters into the weights: equal to float rounding (1e-4, as the shipped-weights merge test).
            TensorAssert.Close(b.OutputImage, c.OutputImage, 1e-4, 1e-4, "loaded, merged");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Pruning_rejects_more_resnets_than_the_model_has()
    {
        TorchRuntime.Initialize();
        using var source = CompactGrowthTests.TrainedLikeSource();
        var e = Assert.Throws<ArgumentException>(() => CompactPruning.Prune(source, 2, dropMidBlock: false));
        Assert.Contains("deepen it instead", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => CompactPruning.Prune(source, 0, dropMidBlock: false));
    }
}
