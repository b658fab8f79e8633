using System.Diagnostics.CodeAnalysis;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Dloral.Temporal;

/// <summary>Output of <see cref="CrossFrameAttention"/>.</summary>
/// <param name="Fused">The current latent plus the retrieved delta, [B,feat,h,w].</param>
/// <param name="Delta">The retrieved delta alone (the reference's <c>out_feat_down</c>).</param>
public sealed record CrossFrameAttentionOutput(Tensor Fused, Tensor Delta);

/// <summary>
/// DLoRAL's <c>CrossFrameAbsoluteAttn</c>: a thresholded "absolute" attention. Q from the current frame, K
/// from the aligned previous frame, V from the aligned previous features; per query a learned threshold
/// t = Linear(Q); weights relu((QKᵀ/√d − t)/3000) with no softmax (a row can be all zero: no match); the
/// result goes through a 1×1 projection and is added to the current features.
/// </summary>
/// <remarks>
/// The reference materialises [B,heads,HW,HW] (604 MB per tensor at a 64² latent, 3 GB at 96²). Here the
/// queries are processed in chunks (each row of the weight matrix depends only on its own query and
/// threshold), so peak memory is bounded by
/// <see cref="MaxChunkBytes"/> at any size, with the same result.
/// </remarks>
[SuppressMessage("Style", "IDE1006", Justification = "field names are the PyTorch state_dict keys")]
public sealed class CrossFrameAttention : nn.Module<Tensor, Tensor, Tensor, Tensor, CrossFrameAttentionOutput>
{
    private readonly Conv2d query_conv;
    private readonly Conv2d key_conv;
    private readonly Conv2d value_conv;
    private readonly Conv2d proj_out;
    private readonly Linear threshold_fc;

    /// <summary>Number of heads (9 in DLoRAL).</summary>
    public int Heads { get; }

    /// <summary>Width of one head (64 in DLoRAL).</summary>
    public int EmbedDim { get; }

    /// <summary>The reference's fixed temperature (a plain attribute, not a parameter).</summary>
    public double Temperature { get; } = 3000.0;

    /// <summary>
    /// Bytes of one chunk's similarity matrix, above <see cref="MinChunkRows"/>. Default 8 MiB: small enough that the block
    /// stays in cache between the GEMM, the ReLU and the second GEMM (2.5× faster than one dense block for the compact
    /// model's 3 600 queries on a 2-core AVX2 CPU, bench compact-unet-profile). Ignored when <see cref="QueryChunkSize"/> is set.
    /// </summary>
    public long MaxChunkBytes { get; set; } = 8L << 20;

    /// <summary>
    /// Fewest query rows per chunk the byte budget may choose (default 256). Every chunk re-packs K for its GEMM, so tiny
    /// chunks are slow: SD's 9×64 attention on a 90×160 latent took 10.7 s with 256 rows, 14.4 s with 64 and 23.9 s with
    /// the 16 that 8 MiB alone would give (the same 2-core AVX2 CPU).
    /// </summary>
    public int MinChunkRows { get; set; } = 256;

    /// <summary>Fixed number of queries per chunk; null = derived from <see cref="MaxChunkBytes"/>; ≥ HW = dense.</summary>
    public int? QueryChunkSize { get; set; }

    public CrossFrameAttention(int inChannels = 4, int featDim = 4, int embedDim = 64, int heads = 9) : base(nameof(CrossFrameAttention))
    {
        Heads = heads;
        EmbedDim = embedDim;
        query_conv = nn.Conv2d(inChannels, embedDim * heads, 1);
        key_conv = nn.Conv2d(inChannels, embedDim * heads, 1);
        value_conv = nn.Conv2d(featDim, embedDim * heads, 1);
        proj_out = nn.Conv2d(embedDim * heads, featDim, 1);
        threshold_fc = nn.Linear(embedDim, 1);
        RegisterComponents();
    }

    /// <summary>Queries per chunk for a given batch and number of keys.</summary>
    public long ChunkFor(long batch, long hw)
    {
        if (QueryChunkSize is { } q) return Math.Clamp(q, 1, hw);
        long perRow = Math.Max(1, batch * Heads * hw * sizeof(float));
        return Math.Clamp(Math.Max(MaxChunkBytes / perRow, MinChunkRows), 1, hw);
    }

    /// <param name="secondFrame">Current frame (Q source) [B,in,H,W].</param>
    /// <param name="firstFrameAligned">Previous frame warped to the current one (K source) [B,in,H,W].</param>
    /// <param name="secondFrameFeat">Current features [B,feat,h,w]; the output has this size.</param>
    /// <param name="firstFrameFeatAligned">Warped previous features (V source) [B,feat,h',w'], resized bilinearly to H×W.</param>
    public override CrossFrameAttentionOutput forward(Tensor secondFrame, Tensor firstFrameAligned, Tensor secondFrameFeat, Tensor firstFrameFeatAligned)
        => Forward(secondFrame, firstFrameAligned, secondFrameFeat, firstFrameFeatAligned, null);

    /// <summary>As <see cref="forward"/>; <paramref name="threshold"/> receives t as the reference's [B·heads·HW,1].</summary>
    public CrossFrameAttentionOutput Forward(Tensor secondFrame, Tensor firstFrameAligned, Tensor secondFrameFeat, Tensor firstFrameFeatAligned, List<Tensor>? threshold)
    {
        using var scope = NewDisposeScope();
        long b = secondFrame.shape[0], h = secondFrame.shape[2], w = secondFrame.shape[3], hw = h * w;
        long d = EmbedDim;

        var featUp = F.interpolate(firstFrameFeatAligned, size: [h, w], mode: InterpolationMode.Bilinear, align_corners: false);
        // Contiguous once, so that every query chunk is a plain row block for the GEMMs.
        var q = query_conv.forward(secondFrame).view(b, Heads, d, hw).permute(0, 1, 3, 2).contiguous(); // [B,heads,HW,d]
        var k = key_conv.forward(firstFrameAligned).view(b, Heads, d, hw);                                // [B,heads,d,HW]
        var v = value_conv.forward(featUp).view(b, Heads, d, hw).permute(0, 1, 3, 2).contiguous();       // [B,heads,HW,d]

        var t = threshold_fc.forward(q.reshape(b * Heads * hw, d));                          // [B*heads*HW,1]
        threshold?.Add(t.detach().clone().MoveToOuterDisposeScope());
        t = t.view(b, Heads, hw, 1);

        double scale = Math.Sqrt(d);
        var qAug = cat([q / scale, -t], 3);                                                   // [B,heads,HW,d+1]
        var kAug = cat([k, ones([b, Heads, 1, hw], dtype: k.dtype, device: k.device)], 2);   // [B,heads,d+1,HW]
        long chunk = ChunkFor(b, hw);
        Tensor outAttn;
        if (chunk >= hw)
        {
            outAttn = Weigh(qAug, kAug, v);
        }
        else
        {
            var parts = new List<Tensor>();
            for (long start = 0; start < hw; start += chunk)
            {
                long len = Math.Min(chunk, hw - start);
                using var inner = NewDisposeScope();
                var part = Weigh(qAug.narrow(2, start, len), kAug, v);
                parts.Add(part.MoveToOuterDisposeScope());
            }
            outAttn = cat(parts, 2);
        }

        // [B,heads,HW,d] -> [B,heads*d,H,W], channel = head*d + e as in the reference.
        var outFeat = proj_out.forward(outAttn.permute(0, 1, 3, 2).reshape(b, Heads * d, h, w));
        var delta = F.interpolate(outFeat, size: [secondFrameFeat.shape[2], secondFrameFeat.shape[3]], mode: InterpolationMode.Bilinear, align_corners: false);
        var fused = secondFrameFeat + delta;
        return new CrossFrameAttentionOutput(fused.MoveToOuterDisposeScope(), delta.MoveToOuterDisposeScope());
    }

    // relu((Q Kᵀ/√d − t)/T)·V = relu([Q/√d, −t]·[K; 1])·V / T for a block of query rows (T > 0): the scale and the
    // threshold ride on the GEMM through one extra column, so the [B,heads,rows,HW] block is written once and only the
    // ReLU passes over it; the temperature divides the small [rows,d] result.
    private Tensor Weigh(Tensor qAugmented, Tensor kAugmented, Tensor v)
    {
        var sim = matmul(qAugmented, kAugmented).relu_();
        return matmul(sim, v).div_(Temperature);
    }
}
