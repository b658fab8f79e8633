using Dloral.Diffusion;
using Dloral.Lora;
using Dloral.Pipeline.Codecs;
using Dloral.Temporal;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Pipeline;

/// <summary>Everything one DLoRAL step produced (all owned by the caller).</summary>
/// <param name="OutputImage">[n,3,H,W] in [−1,1]: the restored current (later) frame.</param>
/// <param name="XDenoised">[n,C,h,w]: fused current latent − predicted noise (C = the codec's latent channels, 4 for SD).</param>
/// <param name="UnetInput">[n,2C,h,w]: [warped previous latent ‖ CFR-fused current latent].</param>
/// <param name="ModelPred">[n,C,h,w]: the UNet's ε̂.</param>
/// <param name="Latents">[n,2,C,h,w]: the scaled codec latents of (previous, current).</param>
/// <param name="Retrieval">The CFR outputs (fused features, CFR weight map, aligned features).</param>
/// <param name="WeightMap">
/// [n,2,1,h,w] as the reference forward returns it: zeros for the previous frame, the uncertainty map for the current
/// (its <c>aligned_input is None</c> rebuild always runs).
/// </param>
public sealed record DloralStepResult(Tensor OutputImage, Tensor XDenoised, Tensor UnetInput, Tensor ModelPred, Tensor Latents,
                                      CrossFrameRetrievalOutput Retrieval, Tensor WeightMap) : IDisposable
{
    public void Dispose()
    {
        WeightMap.Dispose();
        OutputImage.Dispose();
        XDenoised.Dispose();
        UnetInput.Dispose();
        ModelPred.Dispose();
        Latents.Dispose();
        Retrieval.Dispose();
    }
}

/// <summary>
/// DLoRAL's one-step restoration of the later frame of a (previous, current) window, as the reference
/// <c>Generator_eval.forward</c> (non-tiled branch): VAE-encode both frames (distribution mean, so deterministic),
/// cross-frame retrieval, UNet on [warped previous ‖ fused current] at timestep 1 with the prompt embeddings,
/// <c>x = z_cur − ε̂</c> (no scheduler terms), decode <c>x / scaling_factor</c>, clamp to [−1, 1].
/// </summary>
/// <remarks>
/// The steps are public separately so a video pipeline can encode each frame once and reuse its latent, and tile the
/// latent stages. The model owns its modules (Dispose disposes them). The image ↔ latent map is an
/// <see cref="ILatentCodec"/>: SD's VAE (<see cref="VaeLatentCodec"/>, the reference) or the compact model's lossless
/// <see cref="PixelUnshuffleCodec"/>; the latent has C channels and the UNet's conv_in takes 2C.
/// </remarks>
public sealed class DloralModel : IDisposable
{
    /// <summary>The reference's hard-coded timestep (<c>self.timesteps = tensor([1])</c>).</summary>
    public const long ReferenceTimestep = 1;

    private DloralAdapterOptions _adapters = new();
    private bool _configured;

    /// <param name="vae">The SD VAE (frozen).</param>
    /// <param name="unet">The SD UNet already turned into DLoRAL's (8-channel conv_in, six adapters; see <see cref="DloralUnet"/>).</param>
    /// <param name="cfr">The cross-frame retrieval module.</param>
    /// <param name="adapters">Stage / detail / merge (default: the reference's stage 1, unmerged).</param>
    public DloralModel(AutoencoderKL vae, UNet2DCondition unet, CrossFrameRetrieval cfr, DloralAdapterOptions? adapters = null)
        : this(new VaeLatentCodec(vae ?? throw new ArgumentNullException(nameof(vae))), unet, cfr, adapters)
    {
    }

    /// <param name="codec">The latent codec (owned: disposed with the model).</param>
    /// <param name="unet">A DLoRAL UNet whose conv_in takes 2 × the codec's latent channels and outputs that many, with the six adapters.</param>
    /// <param name="cfr">The cross-frame retrieval module, built for the codec's latent channels.</param>
    /// <param name="adapters">Stage / detail / merge (default: the reference's stage 1, unmerged).</param>
    public DloralModel(ILatentCodec codec, UNet2DCondition unet, CrossFrameRetrieval cfr, DloralAdapterOptions? adapters = null)
    {
        Codec = codec ?? throw new ArgumentNullException(nameof(codec));
        Unet = unet ?? throw new ArgumentNullException(nameof(unet));
        Cfr = cfr ?? throw new ArgumentNullException(nameof(cfr));
        var missing = DloralAdapters.ExpectedOn(unet.Config).Except(LoraModel.AdapterNames(unet)).ToList();
        if (missing.Count > 0)
            throw new ArgumentException($"the UNet lacks DLoRAL adapter(s) {string.Join(", ", missing)}: prepare it with DloralUnet.Prepare or load a DLoRAL checkpoint", nameof(unet));
        var convIn = ModuleTree.Get(unet, "conv_in");
        if (convIn is LoraLayer wrapped) convIn = wrapped.BaseLayer;
        int c = codec.LatentChannels;
        if (convIn is not TorchSharp.Modules.Conv2d conv || conv.in_channels != 2 * c)
            throw new ArgumentException($"the UNet's conv_in must take {2 * c} channels ([warped previous ‖ fused current] {c}-channel latents of the codec)", nameof(unet));
        if (unet.Config.OutChannels != c)
            throw new ArgumentException($"the UNet must output the codec's {c} latent channels, its config says out_channels {unet.Config.OutChannels}", nameof(unet));
        if (cfr.Config.LatentChannels != c || cfr.Config.DownscaleFactor != codec.DownscaleFactor)
            throw new ArgumentException($"the CFR is built for {cfr.Config.LatentChannels}-channel latents at 1/{cfr.Config.DownscaleFactor}, the codec gives {c} channels at 1/{codec.DownscaleFactor}", nameof(cfr));
        Cfr.FrameCodec = codec;
        Codec.Eval();
        Unet.eval();
        Cfr.eval();
        Configure(adapters ?? new DloralAdapterOptions());
    }

    /// <summary>
    /// False (reference): a window's previous latent is the previous input frame's. True: it is the previous frame's
    /// restored latent (the model's own output, carried from frame to frame), so detail accumulates over the whole clip.
    /// </summary>
    public bool RecurrentPrevious { get; set; }

    /// <summary>The image ↔ latent codec.</summary>
    public ILatentCodec Codec { get; }

    /// <summary>The SD VAE when the codec is a <see cref="VaeLatentCodec"/>; otherwise an <see cref="InvalidOperationException"/>.</summary>
    public AutoencoderKL Vae => (Codec as VaeLatentCodec)?.Vae
        ?? throw new InvalidOperationException($"this DLoRAL model has no VAE: its latent codec is a {Codec.GetType().Name}");

    /// <summary>Channels C of one latent (4 for SD).</summary>
    public int LatentChannels => Codec.LatentChannels;

    public UNet2DCondition Unet { get; }

    public CrossFrameRetrieval Cfr { get; }

    /// <summary>Timestep given to the UNet (the reference: 1).</summary>
    public long Timestep { get; init; } = ReferenceTimestep;

    /// <summary>Latent scaling factor of the codec (0.18215 for SD's VAE).</summary>
    public double ScalingFactor => Codec.ScalingFactor;

    /// <summary>The current adapter configuration.</summary>
    public DloralAdapterOptions Adapters => _adapters;

    /// <summary>
    /// Selects stage / detail and merged or unmerged adapters. A no-op when nothing changes: with bfloat16 weights every
    /// unmerge/merge cycle rounds the base weights again, so they are only re-merged when the configuration changes.
    /// </summary>
    public void Configure(DloralAdapterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!double.IsFinite(options.Detail)) throw new ArgumentOutOfRangeException(nameof(options), options.Detail, "detail must be finite");
        if (_configured && options == _adapters) return;
        LoraModel.Unmerge(Unet);
        DloralAdapters.Activate(Unet, options.EffectiveDetail);
        if (options.MergeAdapters) LoraModel.Merge(Unet);
        _adapters = options;
        _configured = true;
    }

    /// <summary>
    /// Frames [n,3,H,W] in [−1,1] → scaled latents [n,C,H/f,W/f] (SD: VAE mean·scaling_factor, deterministic).
    /// </summary>
    public Tensor EncodeLatents(Tensor frames)
    {
        ArgumentNullException.ThrowIfNull(frames);
        return Codec.Encode(frames);
    }

    /// <summary>Scaled latent → image in [−1,1] (the codec's decode of latent / scaling_factor, clamped).</summary>
    public Tensor DecodeLatents(Tensor latents)
    {
        ArgumentNullException.ThrowIfNull(latents);
        using var scope = NewDisposeScope();
        return Codec.Decode(latents).clamp(-1.0, 1.0).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// CFR over the window and the UNet input: frames [n,2,3,H,W], latents [n,2,C,h,w], uncertainty [n,1,1,h,w] →
    /// [n,2C,h,w] = [previous latent warped to the current frame ‖ fused current latent] (the reference's
    /// <c>fused[:,0] = aligned[:,1]; fused.view(b,8,h,w)</c>).
    /// </summary>
    public (Tensor UnetInput, CrossFrameRetrievalOutput Retrieval) Fuse(Tensor frames, Tensor latents, Tensor uncertainty)
    {
        ArgumentNullException.ThrowIfNull(frames);
        ArgumentNullException.ThrowIfNull(latents);
        if (frames.dim() != 5 || frames.shape[1] != 2)
            throw new ArgumentException($"DLoRAL works on (previous, current) windows: frames must be [n,2,3,H,W], got [{string.Join(",", frames.shape)}]", nameof(frames));
        using var scope = NewDisposeScope();
        var dt = DTypeOf(Cfr);
        var r = Cfr.forward(frames.to(dt), latents.to(dt), uncertainty.to(dt));
        // In CFR's dtype, not the UNet's: the fused current latent is the skip path of x = z − ε̂, which a bfloat16 UNet's
        // dtype would round to 8 mantissa bits (PredictNoise converts its own copy).
        var unetIn = cat([r.AlignedFeatures.select(1, 1), r.FusedFeatures.select(1, 1)], 1);
        var moved = new CrossFrameRetrievalOutput(r.FusedFeatures.MoveToOuterDisposeScope(), r.WeightMap.MoveToOuterDisposeScope(),
                                                  r.AlignedFeatures.MoveToOuterDisposeScope());
        return (unetIn.MoveToOuterDisposeScope(), moved);
    }

    /// <summary>
    /// The UNet input without a previous frame: scaled latent [n,C,h,w] → [z ‖ z] [n,2C,h,w] (no CFR, no warp), in the
    /// latent's dtype (the skip path keeps its precision; <see cref="PredictNoise"/> converts for the UNet).
    /// Frame-by-frame restoration (<c>--no-temporal</c>) and trainers use it, so both see the same input.
    /// </summary>
    public Tensor SingleFrameInput(Tensor latentCur)
    {
        ArgumentNullException.ThrowIfNull(latentCur);
        if (latentCur.dim() != 4 || latentCur.shape[1] != LatentChannels)
            throw new ArgumentException($"the current latent must be [n,{LatentChannels},h,w], got [{string.Join(",", latentCur.shape)}]", nameof(latentCur));
        using var scope = NewDisposeScope();
        return cat([latentCur, latentCur], 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// UNet ε̂ for a 2C-channel input at <see cref="Timestep"/>; prompt embeddings [1 or n,tokens,width] (SD: 77×1024).
    /// <paramref name="selfEnsemble"/> &gt; 1 averages ε̂ over that many dihedral views (<see cref="Pipeline.SelfEnsemble"/>).
    /// </summary>
    public Tensor PredictNoise(Tensor unetInput, Tensor promptEmbeds, int selfEnsemble = 1)
    {
        ArgumentNullException.ThrowIfNull(unetInput);
        ArgumentNullException.ThrowIfNull(promptEmbeds);
        if (unetInput.dim() != 4 || unetInput.shape[1] != 2 * LatentChannels)
            throw new ArgumentException($"UNet input must be [n,{2 * LatentChannels},h,w], got [{string.Join(",", unetInput.shape)}]", nameof(unetInput));
        using var scope = NewDisposeScope();
        long n = unetInput.shape[0];
        var dtype = DTypeOf(Unet);
        var ctx = promptEmbeds.to(dtype, unetInput.device);
        if (ctx.shape[0] != n) ctx = ctx.expand(n, -1, -1);
        using var t = tensor(new[] { Timestep }, ScalarType.Int64, unetInput.device);
        Tensor Net(Tensor x) => Unet.call(x.to(dtype), t, ctx);
        if (selfEnsemble == 1) return Net(unetInput).MoveToOuterDisposeScope();
        // The views are taken in the input's precision, through the codec: a mirrored latent grid is not the latent of
        // the mirrored image.
        if (Codec is not IDihedralLatentCodec codec)
            throw new NotSupportedException($"self-ensemble needs a codec with exact mirrored latents (the compact models' lossless codec); {Codec.GetType().Name} has none");
        int c = LatentChannels;
        Tensor ToView(Tensor x, int k) => cat([codec.Dihedral(x.narrow(1, 0, c), k), codec.Dihedral(x.narrow(1, c, c), k)], 1);
        Tensor FromView(Tensor y, int k) => codec.Dihedral(y, k, inverse: true);
        return SelfEnsemble.Predict(Net, unetInput, selfEnsemble, ToView, FromView).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One step on the UNet input: x = input[:,C:2C] − ε̂ (the reference applies no scheduler terms), in the input's dtype
    /// or the UNet's, whichever is wider: a bfloat16 UNet on a float32 input predicts ε̂ in bfloat16, but z keeps float32.
    /// </summary>
    public Tensor Denoise(Tensor unetInput, Tensor promptEmbeds, int selfEnsemble = 1)
    {
        ArgumentNullException.ThrowIfNull(unetInput);
        using var scope = NewDisposeScope();
        var pred = PredictNoise(unetInput, promptEmbeds, selfEnsemble);
        return Subtract(unetInput.narrow(1, LatentChannels, LatentChannels), pred).MoveToOuterDisposeScope();
    }

    /// <summary>z − ε̂ in the wider of the two dtypes (float32 beats bfloat16/float16).</summary>
    private static Tensor Subtract(Tensor z, Tensor pred)
    {
        var dtype = Wider(z.dtype, pred.dtype);
        return z.to(dtype) - pred.to(dtype);
    }

    private static ScalarType Wider(ScalarType a, ScalarType b) =>
        a == ScalarType.Float64 || b == ScalarType.Float64 ? ScalarType.Float64
        : a == ScalarType.Float32 || b == ScalarType.Float32 ? ScalarType.Float32 : a;

    /// <summary>
    /// CFR + UNet for a window at any size: frames [n,2,3,H,W], scaled latents [n,2,C,h,w], uncertainty [n,1,1,h,w] →
    /// x_denoised [n,C,h,w]. With a <paramref name="tiler"/> and a latent larger than tile², CFR and UNet run per
    /// latent tile (pixels, latents and uncertainty cropped alike) and the fused current latent and ε̂ are blended with
    /// the Gaussian tile weights before x = z − ε̂, as the reference's tiled branch does; otherwise it is the plain step.
    /// </summary>
    public Tensor DenoiseWindow(Tensor frames, Tensor latents, Tensor uncertainty, Tensor promptEmbeds, LatentTiler? tiler = null)
    {
        ArgumentNullException.ThrowIfNull(latents);
        using var scope = NewDisposeScope();
        int h = (int)latents.shape[^2], w = (int)latents.shape[^1], f = Codec.DownscaleFactor, c = LatentChannels;
        Tensor Tile(LatentTile t)
        {
            var (unetIn, r) = Fuse(t.Slice(frames, f), t.Slice(latents), t.Slice(uncertainty));
            r.Dispose();
            var pred = PredictNoise(unetIn, promptEmbeds);
            var dtype = Wider(unetIn.dtype, pred.dtype);
            return cat([unetIn.narrow(1, c, c).to(dtype), pred.to(dtype)], 1); // blended together: same weights for both
        }
        var blended = tiler is null ? Tile(new LatentTile(0, 0, h, w)) : tiler.Run(h, w, Tile);
        return (blended.narrow(1, 0, c) - blended.narrow(1, c, c)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="DenoiseWindow"/> for one frame alone: scaled latent [n,C,h,w] → x_denoised [n,C,h,w] from the UNet on
    /// <see cref="SingleFrameInput"/> (no CFR); with a <paramref name="tiler"/> the per-tile x = z − ε̂ are blended.
    /// </summary>
    public Tensor DenoiseSingleFrame(Tensor latentCur, Tensor promptEmbeds, LatentTiler? tiler = null)
    {
        ArgumentNullException.ThrowIfNull(latentCur);
        using var scope = NewDisposeScope();
        int h = (int)latentCur.shape[^2], w = (int)latentCur.shape[^1];
        Tensor Tile(LatentTile t) => Denoise(SingleFrameInput(t.Slice(latentCur).contiguous()), promptEmbeds);
        var x = tiler is null ? Tile(new LatentTile(0, 0, h, w)) : tiler.Run(h, w, Tile);
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The whole step for a window: frames [n,2,3,H,W] in [−1,1] (previous, current), uncertainty [n,1,1,H/f,W/f],
    /// prompt embeddings [1 or n,tokens,width]. <paramref name="latents"/> ([n,2,C,h,w]) may be given to reuse cached encodings.
    /// </summary>
    public DloralStepResult Step(Tensor frames, Tensor uncertainty, Tensor promptEmbeds, Tensor? latents = null)
    {
        ArgumentNullException.ThrowIfNull(frames);
        if (frames.dim() != 5 || frames.shape[1] != 2 || frames.shape[2] != 3)
            throw new ArgumentException($"frames must be [n,2,3,H,W], got [{string.Join(",", frames.shape)}]", nameof(frames));
        using var scope = NewDisposeScope();
        long n = frames.shape[0], h = frames.shape[3], w = frames.shape[4];
        int f = Codec.DownscaleFactor;
        if (h % f != 0 || w % f != 0) throw new ArgumentException($"frame size {h}x{w} must be a multiple of {f}", nameof(frames));
        var lat = latents ?? EncodeLatents(frames.reshape(n * 2, 3, h, w)).view(n, 2, -1, h / f, w / f);
        var (unetIn, retrieval) = Fuse(frames, lat, uncertainty);
        var pred = PredictNoise(unetIn, promptEmbeds);
        var x = Subtract(unetIn.narrow(1, LatentChannels, LatentChannels), pred);
        var image = DecodeLatents(x);
        var weightMap = zeros_like(retrieval.WeightMap);
        weightMap.select(1, 1).copy_(uncertainty.select(1, 0));
        var result = new DloralStepResult(image.MoveToOuterDisposeScope(), x.MoveToOuterDisposeScope(), unetIn.MoveToOuterDisposeScope(),
            pred.MoveToOuterDisposeScope(), lat.MoveToOuterDisposeScope(),
            new CrossFrameRetrievalOutput(retrieval.FusedFeatures.MoveToOuterDisposeScope(), retrieval.WeightMap.MoveToOuterDisposeScope(),
                                          retrieval.AlignedFeatures.MoveToOuterDisposeScope()),
            weightMap.MoveToOuterDisposeScope());
        return result;
    }

    /// <summary>The dtype a module computes in (its first parameter's), so mixed-precision parts can be chained.</summary>
    private static ScalarType DTypeOf(nn.Module module) => module.parameters().First().dtype;

    public void Dispose()
    {
        Unet.Dispose();
        Codec.Dispose();
        Cfr.Dispose();
    }
}
