namespace Dloral.Temporal;

/// <summary>
/// Size of a <see cref="CrossFrameRetrieval"/>. The defaults are DLoRAL's reference CFR (4-channel SD latents at 1/8,
/// 9 heads × 64, SPyNet on the frames at latent size, attention at full latent resolution); the compact model uses
/// wider latents, a smaller attention, and runs flow and attention on coarser grids to save CPU.
/// </summary>
/// <param name="LatentChannels">Channels of the latents the CFR fuses (Q/K/V sources, and the fused output).</param>
/// <param name="DownscaleFactor">Frame pixels per latent position (the codec's factor).</param>
/// <param name="EmbedDim">Width of one attention head.</param>
/// <param name="Heads">Attention heads.</param>
/// <param name="FlowDownscale">
/// SPyNet runs on the frames downsampled by DownscaleFactor × this; its flow is upsampled (bilinear, values × this) to
/// the latent grid. 1 = reference.
/// </param>
/// <param name="AttentionPool">
/// Q, K and V come from the latents average-pooled by this; the retrieved delta is upsampled (bilinear) back. 1 = reference.
/// </param>
/// <param name="Flow">The flow that aligns the previous latent (SpyNet = reference; LucasKanade ignores FlowDownscale and
/// runs at latent resolution).</param>
/// <param name="WarpFrames">
/// False (reference): the previous latent is warped on the latent grid. True: it is decoded, warped at frame resolution
/// with the flow upsampled ×DownscaleFactor, and encoded again — for lossless codecs (pixel unshuffle), where a
/// sub-pixel shift of the latent grid blends neighbouring f×f blocks instead of moving the image.
/// </param>
public sealed record CrossFrameRetrievalConfig(int LatentChannels = 4, int DownscaleFactor = 8, int EmbedDim = 64, int Heads = 9,
                                               int FlowDownscale = 1, int AttentionPool = 1, CrossFrameFlow Flow = CrossFrameFlow.SpyNet,
                                               bool WarpFrames = false)
{
    /// <summary>The reference DLoRAL CFR.</summary>
    public static CrossFrameRetrievalConfig Reference { get; } = new();

    /// <summary>Frame pixels per position of the grid the flow is estimated on.</summary>
    public int FlowFrameFactor => Flow == CrossFrameFlow.LucasKanade ? DownscaleFactor : DownscaleFactor * FlowDownscale;

    /// <summary>Throws when a size is not positive.</summary>
    public void Validate()
    {
        if (LatentChannels < 1 || DownscaleFactor < 1 || EmbedDim < 1 || Heads < 1 || FlowDownscale < 1 || AttentionPool < 1)
            throw new ArgumentOutOfRangeException(nameof(CrossFrameRetrievalConfig), this, "every CFR size must be ≥ 1");
    }
}
