using Dloral.Temporal;
using Dloral.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Temporal;

public class CrossFrameAttentionTests(ITestOutputHelper output)
{
    private static readonly Lazy<CrossFrameRetrieval> Cfr = new(CfrGolden.Load);

    private void Check(Tensor expected, Tensor actual, double atol, double rtol, string what)
    {
        output.WriteLine($"{what}: max abs diff {TensorAssert.MaxAbsDiff(expected, actual):G3}");
        TensorAssert.Close(expected, actual, atol, rtol, what);
    }

    [Fact]
    public void Same_size_case_matches_reference_including_threshold()
    {
        using var f = GoldenData.Open("cfr", "case_cross_attn.safetensors");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var cur = f.Load("in.same.cur");
        var prev = f.Load("in.same.prev_aligned");
        var thresholds = new List<Tensor>();
        var r = Cfr.Value.Attention.Forward(cur, prev, cur, prev, thresholds);
        Check(f.Load("act.same.threshold_fc"), thresholds.Single(), 1e-5, 1e-4, "threshold_fc");
        Check(f.Load("out.same.final_feat"), r.Fused, 1e-5, 1e-4, "same.final_feat");
        Check(f.Load("out.same.out_feat_down"), r.Delta, 1e-5, 1e-4, "same.out_feat_down");
    }

    [Theory]
    [InlineData(null)]
    [InlineData(7)] // chunked, not a divisor of 16*12
    public void Mixed_sizes_case_matches_reference(int? chunk)
    {
        using var f = GoldenData.Open("cfr", "case_cross_attn.safetensors");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var attn = new CrossFrameRetrieval();
        attn.Load(GoldenData.PathOf("cfr", "weights.safetensors"));
        attn.Attention.QueryChunkSize = chunk;
        var r = attn.Attention.forward(f.Load("in.mixed.second_frame"), f.Load("in.mixed.first_frame_aligned"),
            f.Load("in.mixed.second_frame_feat"), f.Load("in.mixed.first_frame_feat_aligned"));
        Check(f.Load("out.mixed.final_feat"), r.Fused, 1e-5, 1e-4, $"mixed.final_feat chunk={chunk}");
        Check(f.Load("out.mixed.out_feat_down"), r.Delta, 1e-6, 1e-4, $"mixed.out_feat_down chunk={chunk}");
    }

    [Fact]
    public void Chunked_equals_dense()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var gen = new Generator(123);
        var attn = new CrossFrameAttention();
        // Seeded weights, larger than the default init so that many attention weights are non-zero.
        foreach (var p in attn.parameters()) p.copy_(randn(p.shape, generator: gen).mul_(0.5));
        var cur = randn(2, 4, 24, 20, generator: gen);
        var prev = randn(2, 4, 24, 20, generator: gen);
        attn.QueryChunkSize = int.MaxValue;
        var dense = attn.forward(cur, prev, cur, prev);
        Assert.True(dense.Delta.abs().max().item<float>() > 1e-2, "attention delta is trivially zero; the test would prove nothing");
        // Only the GEMM summation order changes with the chunking: allow a few float32 ulps of the largest value.
        double tol = 1e-6 * dense.Fused.abs().max().item<float>();
        output.WriteLine($"tolerance {tol:G3}");
        foreach (int chunk in new[] { 1, 37, 100, 479 })
        {
            attn.QueryChunkSize = chunk;
            var chunked = attn.forward(cur, prev, cur, prev);
            Check(dense.Fused, chunked.Fused, tol, 0, $"fused chunk={chunk}");
            Check(dense.Delta, chunked.Delta, tol, 0, $"delta chunk={chunk}");
        }
        // The byte budget picks chunks that fit.
        attn.QueryChunkSize = null;
        attn.MaxChunkBytes = 2L * 9 * 480 * 4 * 50; // 50 query rows
        Assert.Equal(256, attn.ChunkFor(2, 480));   // but never fewer than MinChunkRows (each chunk re-packs K)
        attn.MinChunkRows = 1;
        Assert.Equal(50, attn.ChunkFor(2, 480));
        // The defaults: the compact model's 2-head attention on 3 600 queries gets cache-sized chunks, SD's 9-head one at
        // 720p (14 400 queries) the 256-row floor.
        using var compact = new CrossFrameAttention(48, 48, 16, 2);
        Assert.Equal(8L * 1024 * 1024 / (2 * 3600 * 4), compact.ChunkFor(1, 3600));
        using var reference = new CrossFrameAttention();
        Assert.Equal(256, reference.ChunkFor(1, 14400));
        var budgeted = attn.forward(cur, prev, cur, prev);
        Check(dense.Fused, budgeted.Fused, tol, 0, "fused budget");
    }
}
