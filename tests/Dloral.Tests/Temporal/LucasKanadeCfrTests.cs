using System.Text.Json;
using Dloral.Pipeline.Compact;
using Dloral.Temporal;
using Dloral.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Temporal;

/// <summary>The compact model's options for the previous frame: Lucas–Kanade flow (cfr.flow), warping decoded frames (cfr.warp), recurrence (previous).</summary>
public class LucasKanadeCfrTests(ITestOutputHelper output)
{
    private static string Folder => Path.Combine(GoldenData.RepoRoot, "models", "compact");

    /// <summary>
    /// A (previous, current) pair [1,2,3,h,w] in [-1,1] cut from one smooth random texture, the current frame's content
    /// found in the previous one at (x + dx, y + dy): the flow CFR must find is (dx, dy) frame pixels everywhere.
    /// </summary>
    private static Tensor Pan(int h, int w, int dx, int dy)
    {
        using var g = new Generator(7);
        int pad = 16;
        var noise = randn([1, 3, (h + 2 * pad) / 8, (w + 2 * pad) / 8], generator: g); // features of ~2 latent pixels
        var texture = nn.functional.interpolate(noise, size: [h + 2 * pad, w + 2 * pad], mode: InterpolationMode.Bicubic, align_corners: false).tanh();
        var cur = texture.narrow(2, pad, h).narrow(3, pad, w);
        var prev = texture.narrow(2, pad - dy, h).narrow(3, pad - dx, w);
        return stack([prev, cur], 1);
    }

    [Fact]
    public void Lucas_Kanade_aligns_the_previous_latent_of_a_pan_where_an_untrained_SPyNet_gives_zero_flow()
    {
        TorchRuntime.Initialize();
        using var model = CompactDloral.Build(Folder);
        var cfr = model.Model.Cfr;
        int f = model.Config.CodecFactor;
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var frames = Pan(128, 192, dx: 2 * f, dy: f); // (2, 1) latent pixels
        var latents = model.Model.EncodeLatents(frames.view(2, 3, 128, 192)).view(1, 2, -1, 128 / f, 192 / f);
        var uncertainty = zeros([1, 1, 1, 128 / f, 192 / f]);
        var interior = (Tensor t) => t.select(1, 1).narrow(2, 4, 128 / f - 8).narrow(3, 4, 192 / f - 8);
        double ErrorWith(CrossFrameFlow flow, out Tensor flows)
        {
            cfr.UseFlow(flow);
            var trace = new CrossFrameRetrievalTrace();
            var r = cfr.Forward(frames, latents, uncertainty, trace);
            flows = trace.FlowsForward!;
            return (interior(r.AlignedFeatures) - interior(latents)).abs().mean().item<float>();
        }
        double unaligned = (latents.select(1, 0) - latents.select(1, 1)).narrow(2, 4, 128 / f - 8).narrow(3, 4, 192 / f - 8).abs().mean().item<float>();
        double spy = ErrorWith(CrossFrameFlow.SpyNet, out var spyFlow);
        double lk = ErrorWith(CrossFrameFlow.LucasKanade, out var lkFlow);
        cfr.UseFlow(CrossFrameFlow.SpyNet);
        var mean = lkFlow.narrow(3, 4, 128 / f - 8).narrow(4, 4, 192 / f - 8).mean([0, 1, 3, 4]); // away from the borders
        output.WriteLine($"|aligned − current|: unwarped {unaligned:F4}, SPyNet (untrained) {spy:F4}, Lucas–Kanade {lk:F4}; LK mean flow ({mean[0].item<float>():F3}, {mean[1].item<float>():F3})");
        Assert.Equal(0, spyFlow.abs().max().item<float>()); // a fresh compact SPyNet starts at zero flow
        Assert.Equal([1L, 1, 2, 128 / f, 192 / f], lkFlow.shape); // on the latent grid
        Assert.InRange(mean[0].item<float>(), 1.9, 2.1);
        Assert.InRange(mean[1].item<float>(), 0.9, 1.1);
        Assert.True(lk < 0.2 * spy, $"Lucas–Kanade alignment error {lk} should be far below zero flow's {spy}");
    }

    [Fact]
    public void Warping_decoded_frames_aligns_a_sub_pixel_pan_better_than_warping_the_unshuffled_latent()
    {
        TorchRuntime.Initialize();
        using var model = CompactDloral.Build(Folder);
        model.Reconfigure(flow: CrossFrameFlow.LucasKanade);
        var cfr = model.Model.Cfr;
        int f = model.Config.CodecFactor;
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var frames = Pan(128, 192, dx: f / 2, dy: f / 4); // half and a quarter of a latent pixel
        var latents = model.Model.EncodeLatents(frames.view(2, 3, 128, 192)).view(1, 2, -1, 128 / f, 192 / f);
        var uncertainty = zeros([1, 1, 1, 128 / f, 192 / f]);
        double ErrorWith(bool warpFrames)
        {
            cfr.UseFrameWarp(warpFrames);
            var aligned = cfr.Forward(frames, latents, uncertainty, null).AlignedFeatures.select(1, 1);
            return (aligned - latents.select(1, 1)).narrow(2, 4, 128 / f - 8).narrow(3, 4, 192 / f - 8).abs().mean().item<float>();
        }
        double onLatents = ErrorWith(false), onFrames = ErrorWith(true);
        output.WriteLine($"|aligned − current|: latent-grid warp {onLatents:F5}, frame warp {onFrames:F5}");
        Assert.True(onFrames < 0.7 * onLatents, $"frame warp {onFrames} should beat latent-grid warp {onLatents}");

        // A CFR on its own has no codec to decode with: a clear error, not a wrong warp.
        using var bare = new CrossFrameRetrieval(model.Config.Cfr with { WarpFrames = true }) { EnforceReferenceMinimumSize = false };
        var e = Assert.Throws<InvalidOperationException>(() => bare.Forward(frames, latents, uncertainty, null));
        Assert.Contains("FrameCodec", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_flow_choice_is_saved_with_the_weights_and_an_unknown_one_is_refused()
    {
        TorchRuntime.Initialize();
        using var model = CompactDloral.Build(Folder);
        Assert.Equal(CrossFrameFlow.SpyNet, model.Config.Cfr.Flow); // compact.json names none: the reference's SPyNet
        Assert.False(model.Model.RecurrentPrevious);
        model.Reconfigure(flow: CrossFrameFlow.LucasKanade, warpFrames: true, recurrentPrevious: true);
        Assert.Equal(CrossFrameFlow.LucasKanade, model.Model.Cfr.Config.Flow);
        Assert.True(model.Model.Cfr.Config.WarpFrames);
        Assert.True(model.Model.RecurrentPrevious);
        var path = Path.Combine(Path.GetTempPath(), $"dloral-lk-{Environment.ProcessId}.safetensors");
        try
        {
            model.Save(path);
            using var loaded = CompactDloral.Load(path);
            Assert.Equal(CrossFrameFlow.LucasKanade, loaded.Config.Cfr.Flow);
            Assert.Equal(CrossFrameFlow.LucasKanade, loaded.Model.Cfr.Config.Flow);
            Assert.True(loaded.Model.Cfr.Config.WarpFrames);
            Assert.True(loaded.Model.RecurrentPrevious);
            using var doc = JsonDocument.Parse(loaded.Config.CompactJson);
            Assert.Equal("lucas_kanade", doc.RootElement.GetProperty("cfr").GetProperty("flow").GetString());
            Assert.Equal("frames", doc.RootElement.GetProperty("cfr").GetProperty("warp").GetString());
            Assert.Equal("output", doc.RootElement.GetProperty("previous").GetString());
        }
        finally { File.Delete(path); }

        var bad = model.Config.CompactJson.Replace("\"lucas_kanade\"", "\"farneback\"", StringComparison.Ordinal);
        var e = Assert.Throws<InvalidDataException>(() => CompactDloralConfig.Parse(bad, model.Config.UnetJson, "bad.json"));
        Assert.Contains("cfr.flow 'farneback'", e.Message, StringComparison.Ordinal);
        Assert.Contains("bad.json", e.Message, StringComparison.Ordinal);
        var badWarp = model.Config.CompactJson.Replace("\"frames\"", "\"pixels\"", StringComparison.Ordinal);
        Assert.Contains("cfr.warp 'pixels'", Assert.Throws<InvalidDataException>(() => CompactDloralConfig.Parse(badWarp, model.Config.UnetJson, "bad.json")).Message, StringComparison.Ordinal);
        var badPrevious = model.Config.CompactJson.Replace("\"output\"", "\"both\"", StringComparison.Ordinal);
        Assert.Contains("previous 'both'", Assert.Throws<InvalidDataException>(() => CompactDloralConfig.Parse(badPrevious, model.Config.UnetJson, "bad.json")).Message, StringComparison.Ordinal);
    }
}
