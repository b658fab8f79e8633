using Dloral.Pipeline.Compact;
using Dloral.Tests.Cli;
using Dloral.Tests.Support;
using static TorchSharp.torch;

namespace Dloral.Tests.Pipeline;

/// <summary>The trained weights committed under models/compact: found first by the default search, loadable, trained, ≤ 25 MB.</summary>
[Collection("DloralEndToEnd")]
public class ShippedCompactModelTests
{
    private static string Weights => GoldenData.ShippedCompactWeights;

    [Fact]
    public void The_shipped_weights_are_found_by_default_and_are_a_trained_compact_model()
    {
        Assert.True(File.Exists(Weights), $"{Weights} is committed");
        Assert.InRange(new FileInfo(Weights).Length, 1, 25L * 1000 * 1000);
        Assert.True(CompactModelFile.IsCompactFile(Weights));
        Assert.Equal(4, CompactModelFile.ScaleOf(Weights));
        // Without an override, the repository's models/compact comes first in the search (what `dloral upscale` uses).
        var folder = CompactDloral.FindModelFolder(GoldenData.RepoRoot);
        var paths = CompactModelFile.SearchPaths(null, folder, [], null);
        Assert.Equal(Path.GetFullPath(Weights), Path.GetFullPath(paths[0]));

        using var model = CompactDloral.Load(Weights);
        var weights = model.NamedWeights().ToDictionary(kv => kv.Key, kv => kv.Value);
        // Trained, not the seeded init: conv_out (zero at init) and the adapters' B matrices (zero at init) moved.
        Assert.True(weights["unet.conv_out.base_layer.weight"].abs().max().item<float>() > 1e-3f);
        Assert.True(weights.Where(kv => kv.Key.Contains("lora_B", StringComparison.Ordinal) && kv.Key.Contains("consistency", StringComparison.Ordinal))
            .Any(kv => kv.Value.abs().max().item<float>() > 1e-4f), "C-LoRA trained");
        Assert.True(weights.Where(kv => kv.Key.Contains("lora_B", StringComparison.Ordinal) && kv.Key.Contains("quality", StringComparison.Ordinal))
            .Any(kv => kv.Value.abs().max().item<float>() > 1e-4f), "D-LoRA trained");
        // The design since the fifth round (model card): Lucas–Kanade flow, frame-space warp, the previous restored frame.
        Assert.Equal(Dloral.Temporal.CrossFrameFlow.LucasKanade, model.Config.Cfr.Flow);
        Assert.True(model.Config.Cfr.WarpFrames);
        Assert.True(model.Model.RecurrentPrevious);
        // The eleventh round's UNet (model card): pruned by CompactPruning to one resnet per down block and no mid block,
        // so no attention and no "others" adapters; the four encoder/decoder adapters remain.
        Assert.All(model.Config.Unet.LayersPerBlock, l => Assert.Equal(1L, l));
        Assert.Null(model.Config.Unet.MidBlockType);
        Assert.DoesNotContain(weights.Keys, k => k.Contains("mid_block", StringComparison.Ordinal) || (k.StartsWith("unet.", StringComparison.Ordinal) && k.Contains("attn", StringComparison.Ordinal)));
        Assert.Equal(4, Dloral.Lora.LoraModel.AdapterNames(model.Model.Unet).Count);
    }

    [Fact]
    public void Upscales_a_clip_through_the_cli_with_the_shipped_weights()
    {
        using var media = new TestMedia();
        var input = media.PathOf("in.mkv");
        TestMedia.Ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:r=25", "-frames:v", "3", "-c:v", "ffv1", input);
        var output = media.PathOf("out");
        var r = CliRunner.Run("upscale", input, "-o", output + "/", "--model", Weights, "--min-size", "64", "--progress", "none");
        Assert.True(r.ExitCode == 0, r.ToString());
        var frames = Directory.GetFiles(output, "*.png");
        Assert.Equal(3, frames.Length);
        using var src = Dloral.Media.FrameSource.Open(frames.Order(StringComparer.Ordinal).First());
        Assert.Equal(256, src.Width);
        Assert.Equal(192, src.Height);
    }
}
