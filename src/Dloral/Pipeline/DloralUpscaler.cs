using System.Diagnostics;
using Dloral.Pipeline.Codecs;
using Dloral.Pipeline.Compact;
using Dloral.Temporal;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Pipeline;

/// <summary>Cumulative wall-clock time per pipeline stage (for benchmarks and <c>--verbose</c> style reports).</summary>
public sealed class DloralStageTimes
{
    /// <summary>Bicubic resize, gray/uncertainty map, scene-cut signatures, resize back.</summary>
    public TimeSpan Prepare { get; internal set; }

    /// <summary>Latent codec encoder: the (tiled) VAE, or the compact model's pixel-unshuffle (each frame once when caching is on).</summary>
    public TimeSpan VaeEncode { get; internal set; }

    /// <summary>Cross-frame retrieval (SPyNet, warp, attention).</summary>
    public TimeSpan Cfr { get; internal set; }

    /// <summary>The one UNet step.</summary>
    public TimeSpan Unet { get; internal set; }

    /// <summary>Latent codec decoder (the tiled VAE, or the pixel-shuffle of a compact model).</summary>
    public TimeSpan VaeDecode { get; internal set; }

    /// <summary>Colour fix against the bicubic frame.</summary>
    public TimeSpan ColorFix { get; internal set; }

    /// <summary>Frames produced.</summary>
    public long Frames { get; internal set; }

    /// <summary>Codec encodes run (equals the frame count with caching, about twice without).</summary>
    public long Encodes { get; internal set; }
}

/// <summary>
/// DLoRAL as an <see cref="IUpscaler"/>: every frame is restored from a (neighbour, current) window by one
/// <see cref="DloralModel"/> step. Each frame is prepared once (bicubic to the processing size, VAE-encoded,
/// scene-cut signature) and cached for the next window; the window goes through CFR and the UNet (in Gaussian-blended
/// latent tiles when the latent exceeds a tile), the tiled VAE decodes, the colour is fixed against the bicubic frame,
/// and the result is resized to exactly <see cref="Scale"/> × the input size.
/// Any <see cref="ILatentCodec"/> works: SD's VAE goes through <see cref="TiledVae"/>; other codecs (the compact model's
/// lossless <see cref="PixelUnshuffleCodec"/>) are local and cheap, so they encode and decode whole frames directly.
/// </summary>
/// <remarks>
/// Unlike the reference (which never writes frame 0) every frame is produced: a frame that starts a scene (frame 0, or
/// the first after a detected cut) is paired with the NEXT frame when it belongs to the same scene, else with itself;
/// see docs/dloral.md. Deterministic: the VAE mean is used, no noise anywhere.
/// </remarks>
public sealed class DloralUpscaler : IUpscaler
{
    private readonly DloralModel _model;
    private readonly bool _ownsModel;
    private readonly Tensor _promptEmbeds;
    private readonly DloralVideoOptions _options;
    private readonly ColorFixMethod _colorFix;
    private readonly LatentTiler _tiler;
    // Null when the codec is not SD's VAE (then encode/decode go straight through the codec).
    private readonly TiledVae? _vae;
    // Disposed instead of the model when the upscaler was built from a compact model (it owns model and prompt).
    private readonly IDisposable? _modelOwner;
    private readonly SceneCutDetector _cuts = new();
    private readonly Dictionary<long, FrameState> _cache = [];
    private readonly Dictionary<(int, int, int, int, string), ((Tensor, Tensor) Rows, (Tensor, Tensor) Cols)> _bands = [];

    /// <param name="model">The DLoRAL model (its adapters are configured from <paramref name="options"/>).</param>
    /// <param name="promptEmbeds">[1,77,D] prompt embeddings; the upscaler takes ownership.</param>
    /// <param name="options">Pipeline settings (validated here).</param>
    /// <param name="ownsModel">Dispose the model with the upscaler.</param>
    public DloralUpscaler(DloralModel model, Tensor promptEmbeds, DloralVideoOptions options, bool ownsModel = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(promptEmbeds);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (options.SelfEnsemble > 1 && model.Codec is not IDihedralLatentCodec)
            throw new UpscaleOptionsException($"--self-ensemble {options.SelfEnsemble} needs a model with a lossless codec (the compact models): SD's VAE latents cannot be mirrored exactly", "self-ensemble");
        _model = model;
        _ownsModel = ownsModel;
        _promptEmbeds = promptEmbeds.DetachFromDisposeScope();
        _options = options;
        _colorFix = options.ColorFix ?? (model.Codec is VaeLatentCodec ? ColorFixMethod.Adain : ColorFixMethod.None);
        _tiler = LatentTiler.ForCodec(options.TileSize, options.TileOverlap, model.Codec is VaeLatentCodec, model.Codec.DownscaleFactor);
        if (model.Codec is VaeLatentCodec vae)
        {
            var vaeOptions = options.Vae;
            // Workaround: TiledVae's shared-statistics pass downscales with antialiased bilinear interpolation, which libtorch
            // does not implement for bfloat16 (crashes on frames that need VAE tiles). Until that runs in float32, bf16 VAEs
            // normalise per tile.
            if (vae.DType == ScalarType.BFloat16 && vaeOptions.Normalization == TileNormalization.DownscaledWhole)
                vaeOptions = vaeOptions with { Normalization = TileNormalization.PerTile };
            _vae = new TiledVae(vae.Vae, vaeOptions);
        }
        if (model.Adapters != options.Adapters) model.Configure(options.Adapters);
        // Below the reference's 512-px process size the CFR's own assertion must be lifted (an explicit opt-in).
        model.Cfr.EnforceReferenceMinimumSize = options.MinimumProcessSide >= 512;
    }

    /// <summary>
    /// The upscaler for a compact model (<see cref="CompactDloral"/>): its learned prompt is used as the prompt embeddings;
    /// <see cref="DloralVideoOptions.Scale"/> must equal the model's scale.
    /// </summary>
    /// <param name="compact">The compact model.</param>
    /// <param name="options">Pipeline settings (<see cref="DloralVideoOptions.Prompt"/> is ignored: there is no text encoder).</param>
    /// <param name="ownsModel">Dispose the compact model with the upscaler.</param>
    public DloralUpscaler(CompactDloral compact, DloralVideoOptions options, bool ownsModel = true)
        : this(compact?.Model ?? throw new ArgumentNullException(nameof(compact)), CopyPrompt(compact, options), WithMergedAdapters(options), ownsModel: false)
    {
        if (ownsModel) _modelOwner = compact;
    }

    /// <summary>
    /// The compact model always runs with its adapters folded into the UNet weights: the same result within float
    /// tolerance, and each LoRA'd convolution is one convolution instead of three (UNet 1.51 → 1.18 s per 720p frame on
    /// an AVX2 2-core CPU, bench/results/compact-upscale.md). The file keeps them unmerged.
    /// </summary>
    private static DloralVideoOptions WithMergedAdapters(DloralVideoOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Adapters.MergeAdapters ? options : options with { Adapters = options.Adapters with { MergeAdapters = true } };
    }

    /// <summary>The learned prompt, copied (the upscaler owns its prompt), after checking the scale so nothing is left on failure.</summary>
    private static Tensor CopyPrompt(CompactDloral compact, DloralVideoOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Scale != compact.Config.Scale)
            throw new UpscaleOptionsException($"the compact DLoRAL model upscales x{compact.Config.Scale} only, --scale {options.Scale} was asked for", "scale");
        using var mode = no_grad();
        return compact.Prompt.detach().clone();
    }

    /// <inheritdoc/>
    public string Name => "dloral";

    /// <inheritdoc/>
    public int Scale => _options.Scale;

    /// <inheritdoc/>
    public int FramesBefore => _options.FrameByFrame ? 0 : 1;

    /// <inheritdoc/>
    public int FramesAfter => !_options.FrameByFrame && _options.SceneStartNeighbor == SceneStartNeighbor.NextFrame ? 1 : 0;

    /// <summary>The settings in use.</summary>
    public DloralVideoOptions Options => _options;

    /// <summary>The model.</summary>
    public DloralModel Model => _model;

    /// <summary>Stage timings accumulated over all frames so far.</summary>
    public DloralStageTimes Timings { get; } = new();

    /// <summary>
    /// Keep each frame's latent for the next window (default). Off = encode both frames of every window again, only to
    /// measure what caching saves; the output is identical.
    /// </summary>
    public bool CacheLatents { get; init; } = true;

    /// <summary>Raised when a frame starts a new temporal window (clip start or scene cut), with the frame number.</summary>
    public event Action<long, WindowStartReason>? WindowStarted;

    /// <inheritdoc/>
    public Tensor Upscale(FrameWindow window)
    {
        ArgumentNullException.ThrowIfNull(window);
        using var mode = inference_mode();
        using var scope = NewDisposeScope();
        long n = window.FrameNumber;
        var cur = State(n, window.Current);
        if (_options.FrameByFrame)
        {
            var single = Restore(null, cur, window.Current);
            EvictBefore(n + 1);   // nothing is shared between frames
            Timings.Frames++;
            return single.MoveToOuterDisposeScope();
        }

        FrameState? neighbour = null;
        WindowStartReason? start = null;
        if (window.SceneStart || window.Before == 0) start = WindowStartReason.ClipStart;
        else
        {
            var prev = State(n - 1, window.Frames[window.CurrentIndex - 1]);
            if (_options.DetectSceneCuts && _cuts.IsCut(prev.Signature, cur.Signature)) start = WindowStartReason.SceneCut;
            else neighbour = prev;
        }
        if (start is { } reason)
        {
            WindowStarted?.Invoke(n, reason);
            if (window.After >= 1 && _options.SceneStartNeighbor == SceneStartNeighbor.NextFrame)
            {
                var next = State(n + 1, window.Frames[window.CurrentIndex + 1]);
                if (!_options.DetectSceneCuts || !_cuts.IsCut(cur.Signature, next.Signature)) neighbour = next;
            }
            neighbour ??= cur;
            _options.Log?.Invoke($"frame {n}: new temporal window ({(reason == WindowStartReason.SceneCut ? "scene cut" : "clip start")}), " +
                                 $"neighbour = {(ReferenceEquals(neighbour, cur) ? "itself" : "next frame")}");
        }

        var result = Restore(neighbour!, cur, window.Current);
        // Frame n+1's window needs frame n (its previous; a recurrent model its restored latent); everything older can go.
        EvictBefore(CacheLatents || _model.RecurrentPrevious ? n : long.MaxValue);
        Timings.Frames++;
        return result.MoveToOuterDisposeScope();
    }

    private void EvictBefore(long frameNumber)
    {
        foreach (var key in _cache.Keys.Where(k => k < frameNumber).ToList())
        {
            _cache[key].Dispose();
            _cache.Remove(key);
        }
    }

    /// <summary>The processing size for an input of <paramref name="height"/>×<paramref name="width"/>: ×scale, shorter side
    /// brought up to <see cref="DloralVideoOptions.MinimumProcessSide"/>, both sides rounded down to a multiple of the
    /// codec's downscale factor <paramref name="factor"/> (8 for SD's VAE).</summary>
    public static (int Height, int Width) ProcessSize(int height, int width, int scale, int minimumSide, int factor = 8)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(factor, 1);
        double h = (double)height * scale, w = (double)width * scale;
        double k = Math.Max(1.0, minimumSide / Math.Min(h, w));
        int ph = (int)Math.Floor(h * k), pw = (int)Math.Floor(w * k);
        return (Math.Max(factor, ph - ph % factor), Math.Max(factor, pw - pw % factor));
    }

    private FrameState State(long frameNumber, Tensor frame)
    {
        if (_cache.TryGetValue(frameNumber, out var cached)) return cached;
        // Without caching the state still lives until the end of this Upscale call (then evicted).
        var state = Prepare(frame);
        _cache[frameNumber] = state;
        return state;
    }

    private FrameState Prepare(Tensor frame)
    {
        if (frame.dim() != 3 || frame.shape[0] != 3)
            throw new ArgumentException($"frames must be float [3,H,W] in [0,1], got [{string.Join(",", frame.shape)}]", nameof(frame));
        using var scope = NewDisposeScope();
        var clock = Stopwatch.StartNew();
        int h = (int)frame.shape[1], w = (int)frame.shape[2];
        int f = _model.Codec.DownscaleFactor;
        var (ph, pw) = ProcessSize(h, w, Scale, _options.MinimumProcessSide, f);
        // The model input, the colour-fix source and the gray map. SD-based DLoRAL: bicubic like the reference's PIL resize
        // (a = −0.5). Models trained here (no VAE): exactly the trainer's input, torch's bicubic (a = −0.75, edge
        // replicate) — a different kernel at inference than in training costs PSNR.
        var bicubic = _model.Codec is VaeLatentCodec || ph < h
            ? Resize(frame.to(ScalarType.Float32).unsqueeze(0), ph, pw, ResampleKernel.Cubic(-0.5)).clamp_(0.0, 1.0)
            : BicubicInput.Upscale(frame.unsqueeze(0), ph, pw);
        // The cut signature (a 32×32 thumbnail and a histogram) from the input frame: the same decision as from the
        // upscaled frame at 1/scale² of the cost.
        var signature = _cuts.Signature(frame);
        signature.Thumbnail.DetachFromDisposeScope();
        signature.Histogram.DetachFromDisposeScope();
        Timings.Prepare += clock.Elapsed;

        clock.Restart();
        var codecType = _model.Codec.DType;
        var signed = bicubic.mul(2.0).sub_(1.0);
        var latent = _vae is not null
            ? _vae.EncodeMean(signed.to(codecType)) * _model.ScalingFactor
            : _model.EncodeLatents(signed.to(codecType));
        Timings.VaeEncode += clock.Elapsed;
        Timings.Encodes++;
        var state = new FrameState(bicubic.DetachFromDisposeScope(), signed.DetachFromDisposeScope(), latent.DetachFromDisposeScope(), signature);
        return state;
    }

    /// <summary>
    /// The restored current frame at output size, [3,H,W] in [0,1]; <paramref name="previous"/> null = frame by frame
    /// (UNet input [z ‖ z], no CFR).
    /// </summary>
    private Tensor Restore(FrameState? previous, FrameState current, Tensor input)
    {
        using var scope = NewDisposeScope();
        long ph = current.Bicubic.shape[2], pw = current.Bicubic.shape[3];
        int lh = (int)current.Latent.shape[2], lw = (int)current.Latent.shape[3], f = _model.Codec.DownscaleFactor;
        var clock = Stopwatch.StartNew();
        Tensor? frames = null, latents = null, uncertainty = null;
        if (previous is not null)
        {
            frames = stack([previous.Signed, current.Signed], 1);                              // [1,2,3,H,W] in [-1,1]
            // A recurrent model's previous latent is the previous frame restored; a window that starts a scene pairs the
            // frame with the next one or itself, which are not restored yet, so it sees their input latent.
            var previousLatent = _model.RecurrentPrevious && previous.Restored is not null ? previous.Restored.to_type(current.Latent.dtype) : previous.Latent;
            latents = stack([previousLatent, current.Latent], 1);                             // [1,2,C,h,w]
            // CFR's weight map (the reference's uncertainty map passed through) only weights training losses; restoring
            // a frame does not read it, so the pipeline gives the CFR a blank map instead of computing one.
            uncertainty = zeros([1L, 1, 1, lh, lw], dtype: latents.dtype, device: latents.device);
        }
        Timings.Prepare += clock.Elapsed;

        TimeSpan cfr = TimeSpan.Zero, unet = TimeSpan.Zero;
        Tensor Step(LatentTile tile)
        {
            using var s = NewDisposeScope();
            var c = Stopwatch.StartNew();
            Tensor unetIn;
            if (frames is null) unetIn = _model.SingleFrameInput(tile.Slice(current.Latent).contiguous());
            else
            {
                (unetIn, var retrieval) = _model.Fuse(tile.Slice(frames, f).contiguous(), tile.Slice(latents!).contiguous(), tile.Slice(uncertainty!).contiguous());
                retrieval.Dispose();
            }
            cfr += c.Elapsed;
            c.Restart();
            var x = _model.Denoise(unetIn, _promptEmbeds, _options.SelfEnsemble).to(ScalarType.Float32);
            unet += c.Elapsed;
            return x.MoveToOuterDisposeScope();
        }
        var denoised = _tiler.Run(lh, lw, Step);
        if (_model.RecurrentPrevious && !_options.FrameByFrame)
        {
            current.Restored?.Dispose();
            current.Restored = denoised.clone().DetachFromDisposeScope();
        }
        Timings.Cfr += cfr;
        Timings.Unet += unet;

        clock.Restart();
        var codecType = _model.Codec.DType;
        var decoded = _vae is not null
            ? _vae.Decode(denoised.div(_model.ScalingFactor).to(codecType))
            : _model.Codec.Decode(denoised.to(codecType));
        var image = decoded.to(ScalarType.Float32).clamp_(-1.0, 1.0).add_(1.0).div_(2.0);
        Timings.VaeDecode += clock.Elapsed;

        clock.Restart();
        var fixedImage = ColorFix.Apply(_colorFix, image, current.Bicubic);
        Timings.ColorFix += clock.Elapsed;

        clock.Restart();
        long th = input.shape[1] * Scale, tw = input.shape[2] * Scale;
        if (th != ph || tw != pw)
            fixedImage = Resize(fixedImage, (int)th, (int)tw, ResampleKernel.Lanczos()).clamp_(0.0, 1.0);
        Timings.Prepare += clock.Elapsed;
        return fixedImage.squeeze(0).MoveToOuterDisposeScope();
    }

    /// <summary>Separable resize of [1,3,H,W] to <paramref name="height"/>×<paramref name="width"/> (bands cached per size).</summary>
    private Tensor Resize(Tensor image, int height, int width, ResampleKernel kernel)
    {
        int ih = (int)image.shape[2], iw = (int)image.shape[3];
        if (ih == height && iw == width) return image.clone();
        var key = (ih, iw, height, width, kernel.Name);
        if (!_bands.TryGetValue(key, out var b))
        {
            var rows = SeparableResampler.Banded(ih, height, kernel, image.device);
            var cols = SeparableResampler.Banded(iw, width, kernel, image.device);
            b = ((rows.Index.DetachFromDisposeScope(), rows.Weight.DetachFromDisposeScope()), (cols.Index.DetachFromDisposeScope(), cols.Weight.DetachFromDisposeScope()));
            _bands[key] = b;
        }
        return SeparableResampler.Apply(image, b.Rows, b.Cols);
    }

    /// <summary>Forgets cached frames (call between videos when reusing the upscaler).</summary>
    public void Reset()
    {
        foreach (var s in _cache.Values) s.Dispose();
        _cache.Clear();
        _cuts.Reset();
    }

    public void Dispose()
    {
        Reset();
        foreach (var ((r1, r2), (c1, c2)) in _bands.Values)
        {
            r1.Dispose(); r2.Dispose(); c1.Dispose(); c2.Dispose();
        }
        _bands.Clear();
        _promptEmbeds.Dispose();
        _cuts.Dispose();
        if (_ownsModel) _model.Dispose();
        _modelOwner?.Dispose();
    }

    /// <summary>
    /// Everything computed once per frame: bicubic frame [1,3,H,W] in [0,1] and in [-1,1] (the pixels the codec encoded,
    /// the CFR's frames), scaled latent, cut signature.
    /// </summary>
    private sealed class FrameState(Tensor bicubic, Tensor signed, Tensor latent, FrameSignature signature) : IDisposable
    {
        public Tensor Bicubic { get; } = bicubic;
        public Tensor Signed { get; } = signed;
        public Tensor Latent { get; } = latent;
        public FrameSignature Signature { get; } = signature;

        /// <summary>The frame's restored latent (x = z − ε̂), kept for the next window of a recurrent model.</summary>
        public Tensor? Restored { get; set; }

        public void Dispose()
        {
            Restored?.Dispose();
            Bicubic.Dispose();
            Signed.Dispose();
            Latent.Dispose();
            Signature.Dispose();
        }
    }
}
