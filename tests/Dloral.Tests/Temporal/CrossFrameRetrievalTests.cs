using System.Diagnostics;
using Dloral.Temporal;
using Dloral.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Temporal;

public class CrossFrameRetrievalTests(ITestOutputHelper output)
{
    private void Check(Tensor expected, Tensor actual, double atol, double rtol, string what)
    {
        output.WriteLine($"{what}: max abs diff {TensorAssert.MaxAbsDiff(expected, actual):G3}");
        TensorAssert.Close(expected, actual, atol, rtol, what);
    }

    [Fact]
    public void Full_case_64_latent_matches_reference_chunked()
    {
        var cfr = CfrGolden.Load();
        using var f = GoldenData.Open("cfr", "case_cfr_full.safetensors");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var frames = f.Load("in.lqs_u8").to_type(ScalarType.Float32).div(255.0).mul(2.0).sub(1.0);
        var latents = f.Load("in.vae_feat");
        var uncertainty = f.Load("in.uncertainty_map");
        cfr.Attention.MaxChunkBytes = 64L << 20; // 64 MiB per chunk: 455 of 4096 query rows at a time
        var trace = new CrossFrameRetrievalTrace();
        var sw = Stopwatch.StartNew();
        var r = cfr.Forward(frames, latents, uncertainty, trace);
        output.WriteLine($"CFR 64x64 latent, chunk {cfr.Attention.ChunkFor(1, 4096)} rows: {sw.Elapsed.TotalSeconds:F2} s");

        Check(f.Load("act.lqs_downsample"), trace.FramesDownsampled!, 1e-5, 1e-4, "lqs_downsample");
        Check(f.Load("act.flows_forward"), trace.FlowsForward!, 5e-5, 1e-4, "flows_forward");
        Check(f.Load("act.cross_attn_out_feat_down"), trace.Deltas.Single(), 1e-5, 1e-4, "cross_attn_out_feat_down");
        Check(f.Load("out.fused_features"), r.FusedFeatures, 1e-5, 1e-4, "fused_features");
        TensorAssert.Equal(f.Load("out.weight_map"), r.WeightMap, "weight_map");
        Check(f.Load("out.aligned_feat_return"), r.AlignedFeatures, 5e-5, 1e-4, "aligned_feat_return");

        // The reference computes and discards spynet(frame0, frame1); check our SPyNet reproduces it too.
        var down = trace.FramesDownsampled!;
        var backward = cfr.SpyNet.forward(down[.., 0], down[.., 1]);
        Check(f.Load("act.flows_backward").view(1, 2, 64, 64), backward, 5e-5, 1e-4, "flows_backward (unused)");
    }

    [Fact]
    public void State_dict_names_equal_the_golden_weights_file()
    {
        using var file = GoldenData.Open("cfr", "weights.safetensors");
        var names = new CrossFrameRetrieval().state_dict().Keys.Order(StringComparer.Ordinal).ToList();
        Assert.Equal(file.Entries.Keys.Order(StringComparer.Ordinal).ToList(), names);
    }

    [Fact]
    public void Full_reference_state_dict_loads_only_when_ignoring_the_listed_unused_submodules()
    {
        using var file = GoldenData.Open("cfr", "weights.safetensors");
        using var doc = GoldenData.Json("cfr", "case.json");
        using var scope = NewDisposeScope();
        var sd = file.LoadAll();
        // Add every name the full reference CFR_model state_dict has beyond the used ones (from case.json).
        foreach (var entry in doc.RootElement.GetProperty("all_state_dict_names").EnumerateArray())
        {
            var name = entry[0].GetString()!;
            if (sd.ContainsKey(name)) continue;
            var shape = entry[1].EnumerateArray().Select(e => e.GetInt64()).ToArray();
            Assert.True(CrossFrameRetrieval.IsUnusedReferenceName(name), $"{name} is neither built nor listed as unused");
            sd[name] = zeros(shape);
        }
        Assert.True(sd.Count > file.Entries.Count);

        var cfr = new CrossFrameRetrieval();
        cfr.LoadStateDict(sd, ignoreUnusedSubmodules: true, source: "test");
        TensorAssert.Equal(sd["cross_attn_module.key_conv.weight"], cfr.state_dict()["cross_attn_module.key_conv.weight"].detach(), "loaded weight");

        var strict = Assert.Throws<InvalidDataException>(() => new CrossFrameRetrieval().LoadStateDict(sd, ignoreUnusedSubmodules: false, source: "test"));
        Assert.Contains("unexpected", strict.Message);
        Assert.Contains("feat_extract.main.0.weight", strict.Message);
    }

    [Fact]
    public void Missing_unknown_and_misshapen_weights_are_reported_by_name()
    {
        using var file = GoldenData.Open("cfr", "weights.safetensors");
        using var scope = NewDisposeScope();
        var sd = file.LoadAll();
        sd.Remove("spynet.basic_module.3.basic_module.2.conv.weight");
        sd["spynet.extra.weight"] = zeros(3);
        sd["cross_attn_module.proj_out.bias"] = zeros(5);
        var ex = Assert.Throws<InvalidDataException>(() => new CrossFrameRetrieval().LoadStateDict(sd, source: "bad.pkl"));
        Assert.Contains("bad.pkl", ex.Message);
        Assert.Contains("missing 1: spynet.basic_module.3.basic_module.2.conv.weight", ex.Message);
        Assert.Contains("unexpected 1: spynet.extra.weight", ex.Message);
        Assert.Contains("cross_attn_module.proj_out.bias: [5] in file, expected [4]", ex.Message);
    }

    [Fact]
    public void Missing_spynet_buffers_keep_the_imagenet_constants_like_the_reference()
    {
        using var file = GoldenData.Open("cfr", "weights.safetensors");
        using var scope = NewDisposeScope();
        var sd = file.LoadAll();
        var mean = sd["spynet.mean"];
        sd.Remove("spynet.mean");
        sd.Remove("spynet.std");
        var cfr = new CrossFrameRetrieval();
        cfr.LoadStateDict(sd, source: "params-only");
        TensorAssert.Equal(mean, cfr.state_dict()["spynet.mean"], "spynet.mean");
    }

    [Fact]
    public void Frames_below_the_reference_minimum_are_rejected_clearly()
    {
        using var scope = NewDisposeScope();
        var cfr = new CrossFrameRetrieval();
        var ex = Assert.Throws<ArgumentException>(() => cfr.forward(zeros([1, 2, 3, 256, 512]), zeros([1, 2, 4, 32, 64]), zeros([1, 1, 1, 32, 64])));
        Assert.Contains("at least 512x512", ex.Message);

        // Opting out runs (the flow network resizes to a multiple of 32), with the documented output shapes.
        cfr.EnforceReferenceMinimumSize = false;
        using var noGrad = no_grad();
        var r = cfr.forward(zeros([1, 2, 3, 128, 256]), randn([1, 2, 4, 16, 32]), ones([1, 1, 1, 16, 32]));
        Assert.Equal(new long[] { 1, 2, 4, 16, 32 }, r.FusedFeatures.shape);
        Assert.Equal(new long[] { 1, 2, 1, 16, 32 }, r.WeightMap.shape);
    }
}
