using System.Diagnostics.CodeAnalysis;
using Dloral.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Dloral.Temporal;

/// <summary>Output of <see cref="CrossFrameRetrieval"/> (the reference's three return values).</summary>
/// <param name="FusedFeatures">[n,t,4,h,w]: frame 0 unchanged, frame i≥1 = its latent + retrieved delta.</param>
/// <param name="WeightMap">[n,t,1,h,w]: 1 for frame 0, the uncertainty map for frame i≥1.</param>
/// <param name="AlignedFeatures">[n,t,4,h,w]: frame 0 unchanged, frame i≥1 = latent of frame i−1 warped to frame i.</param>
public sealed record CrossFrameRetrievalOutput(Tensor FusedFeatures, Tensor WeightMap, Tensor AlignedFeatures) : IDisposable
{
    public void Dispose()
    {
        FusedFeatures.Dispose();
        WeightMap.Dispose();
        AlignedFeatures.Dispose();
    }
}

/// <summary>Intermediates of one <see cref="CrossFrameRetrieval"/> call, for parity checks and diagnostics.</summary>
public sealed class CrossFrameRetrievalTrace
{
    /// <summary>[n,t,3,H/8,W/8]: the frames after bicubic ×1/8, still in [-1,1].</summary>
    public Tensor? FramesDownsampled { get; set; }

    /// <summary>[n,t−1,2,H/8,W/8]: flow from frame i to frame i−1 (used to warp i−1 onto i).</summary>
    public Tensor? FlowsForward { get; set; }

    /// <summary>Per frame i≥1: the attention delta added to frame i's latent.</summary>
    public List<Tensor> Deltas { get; } = [];
}

/// <summary>
/// DLoRAL's cross-frame retrieval (<c>CFR_model.forward</c>): SPyNet flow on the frames downsampled to
/// latent size, the previous latent warped with it, and <see cref="CrossFrameAttention"/> fusing the warped
/// previous latent into the current one. Parameter names equal the reference state_dict
/// (<c>spynet.*</c>, <c>cross_attn_module.*</c>).
/// </summary>
/// <remarks>
/// Reference numerics kept on purpose (the official weights depend on them): SPyNet sees [-1,1] frames
/// (its ImageNet normalisation assumes [0,1]) after <c>interpolate(scale_factor=0.125, mode='bicubic')</c>
/// with no antialias; Q and K come from the latents, not the images; the flow used is
/// spynet(frame i, frame i−1). The reference also computes spynet(frame i−1, frame i) ("flows_backward")
/// and never uses it: it is not computed here.
/// </remarks>
[SuppressMessage("Style", "IDE1006", Justification = "field names are the PyTorch state_dict keys")]
public sealed class CrossFrameRetrieval : nn.Module<Tensor, Tensor, Tensor, CrossFrameRetrievalOutput>
{
    /// <summary>
    /// Submodules of the reference <c>CFR_model</c> whose parameters are in its state_dict (and in the official
    /// <c>model.pkl["state_dict_bpp"]</c>) but which its forward never calls.
    /// </summary>
    public static IReadOnlyList<string> UnusedReferenceSubmodules { get; } =
        ["feat_extract", "weight_predict", "weight_predict_final", "reconstruction_feat", "conv_hr", "conv_last"];

    /// <summary>The reference asserts the downsampled frames are at least this large (frames ≥ 512 px).</summary>
    public const int MinDownsampledSize = 64;

    /// <summary>
    /// When true (default), frames smaller than 512×512 are rejected as the reference does. SPyNet itself
    /// resizes to a multiple of 32 and runs on smaller frames, but the weights were never used there.
    /// </summary>
    public bool EnforceReferenceMinimumSize { get; set; } = true;

    private readonly SpyNet spynet;

    // Defaults of the metric's estimator (σ 4 window, 5 iterations per level): 40 ms per 320×180 pair on 2 cores.
    private static readonly Metrics.LucasKanadeFlow LucasKanade = new();
    private readonly CrossFrameAttention cross_attn_module;

    /// <summary>The reference DLoRAL CFR (4-channel latents at 1/8, 9 heads × 64).</summary>
    public CrossFrameRetrieval() : this(CrossFrameRetrievalConfig.Reference)
    {
    }

    /// <summary>A CFR of the given size (see <see cref="CrossFrameRetrievalConfig"/>; the default is the reference).</summary>
    public CrossFrameRetrieval(CrossFrameRetrievalConfig config) : base(nameof(CrossFrameRetrieval))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        spynet = new SpyNet();
        cross_attn_module = new CrossFrameAttention(inChannels: config.LatentChannels, featDim: config.LatentChannels, embedDim: config.EmbedDim, heads: config.Heads);
        RegisterComponents();
    }

    /// <summary>The sizes this CFR was built with, and its flow method.</summary>
    public CrossFrameRetrievalConfig Config { get; private set; }

    /// <summary>
    /// The codec that made the latents, for <see cref="CrossFrameRetrievalConfig.WarpFrames"/> (set by <see cref="Pipeline.DloralModel"/>).
    /// </summary>
    public Pipeline.Codecs.ILatentCodec? FrameCodec { get; set; }

    /// <summary>Switches the flow method (the weights are unchanged: SPyNet's stay loaded, and unused under Lucas–Kanade).</summary>
    public void UseFlow(CrossFrameFlow flow) => Config = Config with { Flow = flow };

    /// <summary>Switches between warping latents (reference) and warping decoded frames (<see cref="CrossFrameRetrievalConfig.WarpFrames"/>).</summary>
    public void UseFrameWarp(bool warpFrames) => Config = Config with { WarpFrames = warpFrames };

    /// <summary>The previous latent [m,C,h,w] moved onto the current frame by <paramref name="flow"/> [m,h,w,2] (latent pixels).</summary>
    private Tensor WarpPrevious(Tensor prevFeat, Tensor flow)
    {
        if (!Config.WarpFrames) return FlowWarp.Warp(prevFeat, flow);
        var codec = FrameCodec ?? throw new InvalidOperationException("CFR with cfr.warp \"frames\" needs the latent codec (FrameCodec), which DloralModel sets");
        using var scope = NewDisposeScope();
        int f = Config.DownscaleFactor;
        long h = prevFeat.shape[2] * f, w = prevFeat.shape[3] * f;
        var image = codec.Decode(prevFeat);
        // Contiguous first: on the permuted (channels-last) 2-channel view libtorch's bilinear upsampling is ~1.5× slower
        // at 720p, for the same bytes.
        var frameFlow = F.interpolate(flow.permute(0, 3, 1, 2).to_type(ScalarType.Float32).contiguous(), size: [h, w], mode: InterpolationMode.Bilinear, align_corners: false);
        // Border padding: pixels that come into view repeat the edge instead of turning black. The flow is in latent
        // pixels: ×f inside the warp.
        var warped = FlowWarp.Warp(image, frameFlow.permute(0, 2, 3, 1), padding: GridSamplePaddingMode.Border, flowScale: f);
        return codec.Encode(warped).to_type(prevFeat.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>The flow network.</summary>
    public SpyNet SpyNet => spynet;

    /// <summary>The thresholded cross-frame attention (set its chunking here).</summary>
    public CrossFrameAttention Attention => cross_attn_module;

    /// <summary>
    /// Frames [n,t,3,H,W] → [n,t,3,H/8,W/8] with the reference's <c>interpolate(scale_factor=0.125, mode='bicubic')</c>
    /// (align_corners=False, no antialias: output pixel i reads input pixels 8i+2…8i+5).
    /// </summary>
    public static Tensor DownsampleFrames(Tensor frames) => DownsampleFrames(frames, 8);

    /// <summary>As <see cref="DownsampleFrames(Tensor)"/> by any integer factor (bicubic, scale 1/factor, no antialias).</summary>
    public static Tensor DownsampleFrames(Tensor frames, int factor)
    {
        long n = frames.shape[0], t = frames.shape[1], c = frames.shape[2], h = frames.shape[3], w = frames.shape[4];
        using var scope = NewDisposeScope();
        double s = 1.0 / factor;
        var down = F.interpolate(frames.reshape(n * t, c, h, w), scale_factor: [s, s], mode: InterpolationMode.Bicubic, align_corners: false);
        return down.view(n, t, c, h / factor, w / factor).MoveToOuterDisposeScope();
    }

    /// <summary>As <see cref="Forward"/> without a trace.</summary>
    public override CrossFrameRetrievalOutput forward(Tensor frames, Tensor latents, Tensor uncertainty) => Forward(frames, latents, uncertainty, null);

    /// <summary>
    /// Runs the retrieval over a window of t frames.
    /// </summary>
    /// <param name="frames">[n,t,3,H,W] in [-1,1] (the pixels the codec encodes), H and W multiples of f (8 for SD), ≥ 512 when <see cref="EnforceReferenceMinimumSize"/>.</param>
    /// <param name="latents">[n,t,C,H/f,W/f] scaled latents (C = <see cref="CrossFrameRetrievalConfig.LatentChannels"/>, 4 for SD).</param>
    /// <param name="uncertainty">[n,t−1,1,H/f,W/f] (see <c>UncertaintyMap</c>).</param>
    /// <param name="trace">Optional: receives the intermediates.</param>
    public CrossFrameRetrievalOutput Forward(Tensor frames, Tensor latents, Tensor uncertainty, CrossFrameRetrievalTrace? trace)
    {
        ArgumentNullException.ThrowIfNull(frames);
        ArgumentNullException.ThrowIfNull(latents);
        ArgumentNullException.ThrowIfNull(uncertainty);
        if (frames.dim() != 5 || latents.dim() != 5)
            throw new ArgumentException($"CFR expects frames [n,t,3,H,W] and latents [n,t,c,h,w]; got [{string.Join(",", frames.shape)}] and [{string.Join(",", latents.shape)}]");
        long n = frames.shape[0], t = frames.shape[1], h = frames.shape[3], w = frames.shape[4];
        if (latents.shape[0] != n || latents.shape[1] != t)
            throw new ArgumentException($"CFR: batch/frames of frames [{string.Join(",", frames.shape)}] and latents [{string.Join(",", latents.shape)}] differ");
        int f = Config.DownscaleFactor, fs = Config.FlowFrameFactor, pool = Config.AttentionPool;
        if (latents.shape[2] != Config.LatentChannels)
            throw new ArgumentException($"CFR: built for {Config.LatentChannels}-channel latents, got [{string.Join(",", latents.shape)}]");
        if (h % f != 0 || w % f != 0 || latents.shape[3] != h / f || latents.shape[4] != w / f)
            throw new ArgumentException($"CFR: frames {h}x{w} must be multiples of {f} and {f}x the latents {latents.shape[3]}x{latents.shape[4]}");
        if (EnforceReferenceMinimumSize && (h / f < MinDownsampledSize || w / f < MinDownsampledSize))
            throw new ArgumentException($"CFR: frames must be at least {f * MinDownsampledSize}x{f * MinDownsampledSize} (the reference's minimum for SPyNet), got {h}x{w}");
        if (t >= 2 && (uncertainty.dim() != 5 || uncertainty.shape[1] < t - 1 || uncertainty.shape[3] != h / f || uncertainty.shape[4] != w / f))
            throw new ArgumentException($"CFR: uncertainty map must be [n,{t - 1},1,{h / f},{w / f}], got [{string.Join(",", uncertainty.shape)}]");
        if (fs > f && (h / fs < 1 || w / fs < 1))
            throw new ArgumentException($"CFR: frames {h}x{w} are smaller than the flow grid factor {fs}");

        using var scope = NewDisposeScope();
        var down = DownsampleFrames(frames, fs);
        long hd = h / fs, wd = w / fs, hl = h / f, wl = w / f;

        Tensor? flowsForward = null;
        if (t >= 2)
        {
            var cur = down.narrow(1, 1, t - 1).reshape(n * (t - 1), 3, hd, wd);
            var prev = down.narrow(1, 0, t - 1).reshape(n * (t - 1), 3, hd, wd);
            flowsForward = LatentFlow(cur, prev, hl, wl).view(n, t - 1, 2, hl, wl);
        }

        var fused = latents.clone();
        var aligned = latents.clone();
        var weightMap = ones([n, t, 1, latents.shape[3], latents.shape[4]], dtype: latents.dtype, device: latents.device);
        for (long i = 1; i < t; i++)
        {
            var curFeat = latents.select(1, i);
            var prevFeat = latents.select(1, i - 1);
            var flow = flowsForward!.select(1, i - 1).permute(0, 2, 3, 1);
            var alignedPrev = WarpPrevious(prevFeat, flow);
            // With pooling, Q/K/V see the pooled grid and the delta is upsampled to the latent (CrossFrameAttention
            // resizes the V features to the Q grid and the delta to the current features' size).
            var (q, k) = pool > 1
                ? (F.avg_pool2d(curFeat, pool, pool, ceil_mode: true, count_include_pad: false), F.avg_pool2d(alignedPrev, pool, pool, ceil_mode: true, count_include_pad: false))
                : (curFeat, alignedPrev);
            var attn = cross_attn_module.forward(q, k, curFeat, k);
            fused.select(1, i).copy_(attn.Fused);
            weightMap.select(1, i).copy_(uncertainty.select(1, i - 1));
            aligned.select(1, i).copy_(alignedPrev);
            trace?.Deltas.Add(attn.Delta.MoveToOuterDisposeScope());
        }
        if (trace is not null)
        {
            trace.FramesDownsampled = down.MoveToOuterDisposeScope();
            trace.FlowsForward = flowsForward?.MoveToOuterDisposeScope();
        }
        return new CrossFrameRetrievalOutput(fused.MoveToOuterDisposeScope(), weightMap.MoveToOuterDisposeScope(), aligned.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The flow <see cref="Forward"/> warps with, from <paramref name="curDown"/> to <paramref name="prevDown"/> (frames
    /// already downsampled by <see cref="CrossFrameRetrievalConfig.FlowFrameFactor"/>): SPyNet, upsampled to the latent grid
    /// when FlowDownscale &gt; 1 (differentiable w.r.t. its parameters), or Lucas–Kanade at latent resolution (no
    /// gradients). One method for Forward and flow supervision, so training sees exactly the flow inference uses.
    /// </summary>
    /// <param name="curDown">[m,3,hd,wd] the frame the flow starts from (in [-1,1], as Forward passes them).</param>
    /// <param name="prevDown">[m,3,hd,wd] the frame the flow points into.</param>
    /// <param name="latentHeight">Latent grid height (frame height / DownscaleFactor).</param>
    /// <param name="latentWidth">Latent grid width.</param>
    /// <returns>[m,2,latentHeight,latentWidth] in latent pixels, x then y.</returns>
    public Tensor LatentFlow(Tensor curDown, Tensor prevDown, long latentHeight, long latentWidth)
    {
        ArgumentNullException.ThrowIfNull(curDown);
        ArgumentNullException.ThrowIfNull(prevDown);
        using var scope = NewDisposeScope();
        if (Config.Flow == CrossFrameFlow.LucasKanade)
        {
            // Lucas–Kanade reads [0,1] frames and works in inference mode; the clone is an ordinary tensor that autograd
            // may save (grid_sample keeps its grid for the backward pass). Float32 whatever the frames' dtype: FlowWarp
            // samples in float32, and bfloat16 would round a 5-pixel flow to 1/32 px.
            using var lk = LucasKanade.Estimate((curDown + 1) * 0.5, (prevDown + 1) * 0.5);
            return lk.clone().MoveToOuterDisposeScope();
        }
        var flow = spynet.forward(curDown, prevDown);
        if (Config.FlowDownscale > 1) // coarse flow → latent grid, in latent pixels
            flow = F.interpolate(flow, size: [latentHeight, latentWidth], mode: InterpolationMode.Bilinear, align_corners: false) * (double)Config.FlowDownscale;
        return flow.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Loads <c>spynet.*</c> and <c>cross_attn_module.*</c> from a state dict (names as in the reference
    /// CFR_model). Missing names, wrong shapes and unknown names are errors; names under
    /// <see cref="UnusedReferenceSubmodules"/> are skipped when <paramref name="ignoreUnusedSubmodules"/> is true.
    /// </summary>
    /// <param name="stateDict">Name → tensor (e.g. the official <c>model.pkl["state_dict_bpp"]</c>).</param>
    /// <param name="ignoreUnusedSubmodules">Skip names under <see cref="UnusedReferenceSubmodules"/> instead of failing.</param>
    /// <param name="source">Where the tensors came from, for error messages.</param>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> stateDict, bool ignoreUnusedSubmodules = true, string source = "state dict")
    {
        ArgumentNullException.ThrowIfNull(stateDict);
        Load(stateDict.Keys, name => stateDict[name].shape, (name, target) => target.copy_(stateDict[name]), ignoreUnusedSubmodules, source);
    }

    /// <summary>Loads the weights from a safetensors file (strictly, except the unused reference submodules when asked).</summary>
    public void Load(SafeTensorsFile file, bool ignoreUnusedSubmodules = true)
    {
        ArgumentNullException.ThrowIfNull(file);
        Load(file.Entries.Keys, name => file.Entries[name].Shape, file.ReadInto, ignoreUnusedSubmodules, file.Path);
    }

    /// <summary>Loads from any weight source, e.g. a lazily opened model.pkl's <c>state_dict_bpp</c> (streamed, no in-memory copy).</summary>
    public void Load(IWeightSource source, bool ignoreUnusedSubmodules = true)
    {
        ArgumentNullException.ThrowIfNull(source);
        Load(source.Names, source.ShapeOf, source.ReadInto, ignoreUnusedSubmodules, source.Description);
    }

    /// <summary>Opens and loads a safetensors file.</summary>
    public void Load(string path, bool ignoreUnusedSubmodules = true)
    {
        using var file = SafeTensorsFile.Open(path);
        Load(file, ignoreUnusedSubmodules);
    }

    /// <summary>True for names of reference submodules this port does not build.</summary>
    public static bool IsUnusedReferenceName(string name) =>
        UnusedReferenceSubmodules.Any(m => name.StartsWith(m + ".", StringComparison.Ordinal));

    private void Load(IEnumerable<string> names, Func<string, long[]> shapeOf, Action<string, Tensor> copy, bool ignoreUnused, string source)
    {
        var own = state_dict();
        var available = names.ToHashSet(StringComparer.Ordinal);
        // Buffers (spynet.mean/std) may be absent: the reference's --load_cfr copies parameters only, so the
        // constructor's ImageNet constants are what it runs with anyway.
        var bufferNames = named_buffers().Select(b => b.name).ToHashSet(StringComparer.Ordinal);
        var missing = own.Keys.Where(k => !available.Contains(k) && !bufferNames.Contains(k)).ToList();
        var unexpected = available.Where(k => !own.ContainsKey(k) && !(ignoreUnused && IsUnusedReferenceName(k))).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var wrongShape = own.Where(kv => available.Contains(kv.Key) && !shapeOf(kv.Key).SequenceEqual(kv.Value.shape))
            .Select(kv => $"{kv.Key}: [{string.Join(",", shapeOf(kv.Key))}] in file, expected [{string.Join(",", kv.Value.shape)}]").ToList();
        if (missing.Count + unexpected.Count + wrongShape.Count > 0)
        {
            var parts = new List<string>();
            if (missing.Count > 0) parts.Add($"missing {missing.Count}: {string.Join(", ", missing.Take(20))}");
            if (unexpected.Count > 0) parts.Add($"unexpected {unexpected.Count}: {string.Join(", ", unexpected.Take(20))}");
            if (wrongShape.Count > 0) parts.Add($"wrong shape: {string.Join("; ", wrongShape.Take(20))}");
            throw new InvalidDataException($"{source}: CFR weights do not match the reference CFR_model ({string.Join(" | ", parts)})");
        }
        using var noGrad = no_grad();
        foreach (var (name, target) in own)
            if (available.Contains(name)) copy(name, target);
    }
}
