using Dloral.Diffusion;
using static TorchSharp.torch;

namespace Dloral.Pipeline;

/// <summary>How GroupNorm layers are normalised when the VAE runs tile by tile.</summary>
public enum TileNormalization
{
    /// <summary>
    /// Each tile uses its own statistics (the default; classic tiling — colour/contrast may drift between tiles, but
    /// the context padding keeps core borders seamless).
    /// </summary>
    PerTile,

    /// <summary>
    /// Statistics of every GroupNorm are first recorded on a (downscaled) copy of the whole input, then every tile is
    /// normalised with them. Exact when the input needs no downscaling (≤ the stats size); with downscaling it is only an
    /// estimate — on the random-weight test VAEs a 2× downscale was worse than <see cref="PerTile"/>, hence not default.
    /// </summary>
    DownscaledWhole,
}

/// <summary>Tile sizes for <see cref="TiledVae"/>.</summary>
public sealed record TiledVaeOptions
{
    /// <summary>Encoder tile core side in pixels (multiple of the VAE's downscale factor).</summary>
    public int EncoderTile { get; init; } = 512;

    /// <summary>
    /// Context added on every side of an encoder tile and cropped away afterwards (pixels, multiple of 8). It covers the
    /// convolutions' receptive field so zero padding at tile edges does not reach the kept core.
    /// </summary>
    public int EncoderPad { get; init; } = 32;

    /// <summary>Decoder tile core side in latent pixels.</summary>
    public int DecoderTile { get; init; } = 64;

    /// <summary>Context added on every side of a decoder tile (latent pixels), cropped away afterwards.</summary>
    public int DecoderPad { get; init; } = 11;

    public TileNormalization Normalization { get; init; } = TileNormalization.PerTile;

    /// <summary>
    /// Longest side (pixels) of the downscaled image whose GroupNorm statistics the encoder tiles share. Default: one
    /// padded tile, so the statistics pass needs no more memory than a tile.
    /// </summary>
    public int EncoderStatsMaxSide { get; init; } = 576;

    /// <summary>Longest side (latent pixels) of the downscaled latent whose statistics the decoder tiles share (default: one padded tile).</summary>
    public int DecoderStatsMaxSide { get; init; } = 86;
}

/// <summary>
/// Encodes and decodes images of any size with an <see cref="AutoencoderKL"/> in overlapping tiles, so 1080p and 4K
/// frames run in bounded memory: peak memory is one tile's activations plus the full-size input and output.
/// The image is split into cores; each core is processed with extra context on every side (the convolutions' receptive
/// field), which is cropped away, so cores meet without seams. Inputs that fit in one padded tile run untiled, bit-identical.
/// </summary>
/// <remarks>
/// Differences to the untiled VAE come from two places: GroupNorm statistics (per tile by default; see
/// <see cref="TileNormalization"/>) and the mid-block attention, which sees only its tile (as in the reference's tiling). Not thread-safe: the GroupNorm layers hold the recorded
/// statistics during a call.
/// </remarks>
public sealed class TiledVae
{
    private readonly AutoencoderKL _vae;

    public TiledVaeOptions Options { get; }

    public TiledVae(AutoencoderKL vae, TiledVaeOptions? options = null)
    {
        _vae = vae;
        Options = options ?? new TiledVaeOptions();
        int f = vae.DownscaleFactor;
        if (Options.EncoderTile % f != 0 || Options.EncoderPad % f != 0 || Options.EncoderTile <= 0)
            throw new ArgumentException($"encoder tile ({Options.EncoderTile}) and pad ({Options.EncoderPad}) must be positive multiples of {f}");
        if (Options.DecoderTile <= 0 || Options.DecoderPad < 0) throw new ArgumentException("decoder tile must be positive and its pad non-negative");
    }

    /// <summary>Image [B,3,H,W] in [−1,1] (H, W multiples of 8) → moments [B, 2·latent, H/8, W/8].</summary>
    public Tensor EncodeMoments(Tensor image)
    {
        int f = _vae.DownscaleFactor;
        if (image.shape[2] % f != 0 || image.shape[3] % f != 0)
            throw new ArgumentException($"image size {image.shape[3]}×{image.shape[2]} must be a multiple of {f}");
        if (image.shape[2] <= Options.EncoderTile + 2 * Options.EncoderPad && image.shape[3] <= Options.EncoderTile + 2 * Options.EncoderPad)
            return _vae.EncodeMoments(image);
        var norms = _vae.Encoder.modules().OfType<Nn.GroupNorm>().ToList();
        try
        {
            if (Options.Normalization == TileNormalization.DownscaledWhole)
                RecordStatistics(norms, image, Options.EncoderStatsMaxSide, f, x => _vae.EncodeMoments(x));
            return RunTiled(image, Options.EncoderTile, Options.EncoderPad, f, 1, f, x => _vae.EncodeMoments(x));
        }
        finally
        {
            foreach (var n in norms) n.ClearStatistics();
        }
    }

    /// <summary>Tiled encode, returning the latent distribution's mean (unscaled).</summary>
    public Tensor EncodeMean(Tensor image)
    {
        using var moments = EncodeMoments(image);
        return moments.chunk(2, 1)[0].contiguous();
    }

    /// <summary>Latent [B, latent, h, w] (unscaled) → image [B, 3, 8h, 8w], no clamp.</summary>
    public Tensor Decode(Tensor latent)
    {
        int f = _vae.DownscaleFactor;
        if (latent.shape[2] <= Options.DecoderTile + 2 * Options.DecoderPad && latent.shape[3] <= Options.DecoderTile + 2 * Options.DecoderPad)
            return _vae.Decode(latent);
        var norms = _vae.Decoder.modules().OfType<Nn.GroupNorm>().ToList();
        try
        {
            if (Options.Normalization == TileNormalization.DownscaledWhole)
                RecordStatistics(norms, latent, Options.DecoderStatsMaxSide, 1, x => _vae.Decode(x));
            return RunTiled(latent, Options.DecoderTile, Options.DecoderPad, 1, f, 1, x => _vae.Decode(x));
        }
        finally
        {
            foreach (var n in norms) n.ClearStatistics();
        }
    }

    /// <summary>Runs <paramref name="run"/> once on a downscaled copy of the input with every GroupNorm recording.</summary>
    private static void RecordStatistics(List<Nn.GroupNorm> norms, Tensor input, int maxSide, int align, Func<Tensor, Tensor> run)
    {
        using var scope = NewDisposeScope();
        long h = input.shape[2], w = input.shape[3];
        double factor = Math.Max(1.0, Math.Max(h, w) / (double)maxSide);
        long sh = Math.Max(align, (long)Math.Round(h / factor / align) * align);
        long sw = Math.Max(align, (long)Math.Round(w / factor / align) * align);
        // Antialiased bilinear has no bf16 CPU kernel: resample in float32.
        var small = sh == h && sw == w ? input
            : nn.functional.interpolate(input.to_type(ScalarType.Float32), [sh, sw], mode: InterpolationMode.Bilinear, align_corners: false, antialias: true)
                .to_type(input.dtype);
        foreach (var n in norms) n.Record();
        run(small);
        foreach (var n in norms) n.UseFixedStatistics();
    }

    /// <summary>
    /// Splits an axis into near-equal cores of at most <paramref name="tile"/> (aligned), each widened by
    /// <paramref name="pad"/> of context clamped to the axis. Returns (input start, input length, core start, core length).
    /// </summary>
    internal static List<(long Start, long Length, long CoreStart, long CoreLength)> TileSpans(long length, long tile, long pad, long align)
    {
        long n = (long)Math.Ceiling(length / (double)tile);
        var bounds = new List<long>();
        for (long i = 0; i <= n; i++) bounds.Add(i == n ? length : (long)Math.Round(i * length / (double)n / align) * align);
        var spans = new List<(long, long, long, long)>();
        for (int i = 0; i < n; i++)
        {
            long c0 = bounds[i], c1 = bounds[i + 1];
            if (c1 <= c0) continue;
            long s0 = Math.Max(0, c0 - pad), s1 = Math.Min(length, c1 + pad);
            spans.Add((s0, s1 - s0, c0, c1 - c0));
        }
        return spans;
    }

    /// <summary>
    /// Splits the input ([B,C,H,W]) into cores of <paramref name="tile"/> input pixels, runs <paramref name="run"/> on each
    /// core plus <paramref name="pad"/> of context (output size = input size · mul / div), and writes each output core
    /// into place. Only one tile's activations are alive at a time.
    /// </summary>
    private static Tensor RunTiled(Tensor input, long tile, long pad, long div, long mul, long align, Func<Tensor, Tensor> run)
    {
        long h = input.shape[2], w = input.shape[3];
        var ys = TileSpans(h, tile, pad, align);
        var xs = TileSpans(w, tile, pad, align);
        Tensor? output = null;
        try
        {
            foreach (var y in ys)
                foreach (var x in xs)
                {
                    using var scope = NewDisposeScope();
                    var result = run(input.narrow(2, y.Start, y.Length).narrow(3, x.Start, x.Length));
                    output ??= empty([result.shape[0], result.shape[1], h * mul / div, w * mul / div], result.dtype, input.device).DetachFromDisposeScope();
                    var core = result.narrow(2, (y.CoreStart - y.Start) * mul / div, y.CoreLength * mul / div)
                                     .narrow(3, (x.CoreStart - x.Start) * mul / div, x.CoreLength * mul / div);
                    output.narrow(2, y.CoreStart * mul / div, y.CoreLength * mul / div)
                          .narrow(3, x.CoreStart * mul / div, x.CoreLength * mul / div).copy_(core);
                }
            return output!;
        }
        catch
        {
            output?.Dispose();
            throw;
        }
    }
}
