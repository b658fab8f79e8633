using Dloral.Nn;
using TorchSharp;

namespace Dloral.Pipeline;

/// <summary>Why a new temporal window starts at a frame (see <see cref="DloralUpscaler.WindowStarted"/>).</summary>
public enum WindowStartReason
{
    /// <summary>The first frame of the clip.</summary>
    ClipStart,

    /// <summary>A scene cut lies between the previous frame and this one.</summary>
    SceneCut,
}

/// <summary>Which frame a scene-start frame is paired with (it has no earlier frame of its own scene).</summary>
public enum SceneStartNeighbor
{
    /// <summary>The next frame when it belongs to the same scene, else the frame itself (the default; see docs/dloral.md).</summary>
    NextFrame,

    /// <summary>The frame itself (zero motion, empty uncertainty map).</summary>
    Self,
}

/// <summary>
/// Settings of the DLoRAL video pipeline (<see cref="DloralUpscaler"/>): adapters, prompt, tiles, colour fix, precision.
/// Defaults reproduce the reference's <c>test_DLoRAL.py</c> (stage 1, AdaIN, latent tile 96 / overlap 32, empty
/// prompt, frames brought up to 512 px) except where the reference is a product bug (frame 0, randomness).
/// </summary>
public sealed record DloralVideoOptions
{
    /// <summary>Magnification of width and height (the output is exactly Scale × input).</summary>
    public int Scale { get; init; } = 4;

    /// <summary>The official <c>model.pkl</c> when the model is a diffusers folder (null for a converted file).</summary>
    public string? Checkpoint { get; init; }

    /// <summary>Stage / D-LoRA detail / merged adapters.</summary>
    public DloralAdapterOptions Adapters { get; init; } = new();

    /// <summary>Text prompt, CLIP-encoded once per video (the reference's RAM tagger is not used; default empty).</summary>
    public string Prompt { get; init; } = "";

    /// <summary>
    /// Colour correction of the output against the bicubic frame; null = the model's default: AdaIN for SD-based DLoRAL
    /// (the reference's: SD's VAE shifts colours), none for the compact model (lossless codec, trained with L2 against the
    /// ground truth: AdaIN would pull its restored contrast back to the blurrier bicubic frame's).
    /// </summary>
    public ColorFixMethod? ColorFix { get; init; }

    /// <summary>
    /// Latent tile side (latent pixels; the reference's <c>--latent_tiled_size</c>); null = the model's default:
    /// the reference's 96 for SD's VAE, <see cref="LatentTiler.CodecTilePixels"/> / f for other codecs.
    /// </summary>
    public int? TileSize { get; init; }

    /// <summary>Latent tile overlap (the reference's <c>--latent_tiled_overlap</c>); null = the model's default (32 for SD,
    /// <see cref="LatentTiler.CodecOverlapPixels"/> / f for other codecs).</summary>
    public int? TileOverlap { get; init; }

    /// <summary>VAE tiles (pixels / latent pixels); frames that fit one tile run untiled, bit-identical.</summary>
    public TiledVaeOptions Vae { get; init; } = new();

    /// <summary>Compute dtype of UNet, VAE and text encoder (float32 or bfloat16; float16 is converted at load).</summary>
    public torch.ScalarType DType { get; init; } = torch.ScalarType.Float32;

    /// <summary>Device the model runs on.</summary>
    public torch.Device? Device { get; init; }

    /// <summary>
    /// Shorter side (pixels, at output scale) a frame is brought up to before processing, like the reference's
    /// <c>process_size</c> 512: its cross-frame retrieval was trained (and asserts) on frames of at least 512 px.
    /// Lower it only for tiny test models or quick previews; it must be at least <see cref="MinimumProcessSideFloor"/>,
    /// and below 512 the CFR's reference size check is switched off.
    /// </summary>
    public int MinimumProcessSide { get; init; } = 512;

    /// <summary>The smallest <see cref="MinimumProcessSide"/> accepted: SPyNet's 6-level pyramid needs a ≥ 8-px latent.</summary>
    public const int MinimumProcessSideFloor = 64;

    /// <summary>How a scene-start frame (frame 0 included) gets its neighbour.</summary>
    public SceneStartNeighbor SceneStartNeighbor { get; init; } = SceneStartNeighbor.NextFrame;

    /// <summary>Detect scene cuts and start a new window at each (default on).</summary>
    public bool DetectSceneCuts { get; init; } = true;

    /// <summary>
    /// Restore every frame alone, without cross-frame retrieval or a previous frame: the UNet sees [z ‖ z] (see
    /// <see cref="DloralModel.SingleFrameInput"/>). For comparisons with the temporal model; default off.
    /// </summary>
    public bool FrameByFrame { get; init; }

    /// <summary>
    /// Geometric self-ensemble: the UNet's ε̂ averaged over this many dihedral views of its input (1 = off, 2 = + mirror,
    /// 4, 8). Each view costs one more UNet pass; see <see cref="Pipeline.SelfEnsemble"/>.
    /// </summary>
    public int SelfEnsemble { get; init; } = 1;

    /// <summary>Receives one-line diagnostics (window starts, tiling) when set.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>Model options (device + dtype) for loading.</summary>
    public ModelOptions ModelOptions => new(Device, DType);

    /// <summary>Throws <see cref="UpscaleOptionsException"/> naming the first unusable setting.</summary>
    public void Validate()
    {
        if (Scale is < 1 or > 8) throw new UpscaleOptionsException($"scale must be between 1 and 8, got {Scale}", "scale");
        if (!double.IsFinite(Adapters.Detail) || Adapters.Detail < 0) throw new UpscaleOptionsException($"detail must be a finite number ≥ 0, got {Adapters.Detail}", "detail");
        if (TileSize is < 8) throw new UpscaleOptionsException($"tile must be at least 8 latent pixels, got {TileSize}", "tile");
        if (TileOverlap is < 0) throw new UpscaleOptionsException($"tile overlap must be ≥ 0, got {TileOverlap}", "tile-overlap");
        if (TileSize is { } tile && TileOverlap is { } overlap && overlap >= tile)
            throw new UpscaleOptionsException($"tile overlap must be in [0, tile), got {overlap} with tile {tile}", "tile-overlap");
        if (DType is not (torch.ScalarType.Float32 or torch.ScalarType.BFloat16))
            throw new UpscaleOptionsException($"dtype must be float32 or bfloat16, got {DType}", "dtype");
        if (Array.IndexOf(Pipeline.SelfEnsemble.Sizes, SelfEnsemble) < 0)
            throw new UpscaleOptionsException($"self-ensemble must be one of {string.Join(", ", Pipeline.SelfEnsemble.Sizes)}, got {SelfEnsemble}", "self-ensemble");
        if (MinimumProcessSide < MinimumProcessSideFloor)
            throw new UpscaleOptionsException($"minimum process side must be at least {MinimumProcessSideFloor} px, got {MinimumProcessSide}", "min-size");
    }
}
