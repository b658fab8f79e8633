using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Pipeline;

/// <summary>One latent tile: top-left corner and size, in latent pixels.</summary>
public readonly record struct LatentTile(int Y, int X, int Height, int Width)
{
    /// <summary>This tile's region of a [...,H,W] tensor whose pixels are <paramref name="scale"/>× latent pixels (8 for images).</summary>
    public Tensor Slice(Tensor t, int scale = 1)
    {
        ArgumentNullException.ThrowIfNull(t);
        return t.narrow(-2, (long)Y * scale, (long)Height * scale).narrow(-1, (long)X * scale, (long)Width * scale);
    }
}

/// <summary>
/// Runs a function over overlapping latent tiles and blends the results with the reference's Gaussian
/// weights (<see cref="GaussianTileWeights"/>), as the reference's tiled branch (latent h·w &gt; tile²) does,
/// so any frame size runs in bounded memory.
/// </summary>
/// <remarks>
/// Tiling plan (the reference's): square tiles of side min(tile, h, w); along each axis offsets
/// i·(tile − overlap) until the axis is covered, the last tile flush with the far edge. Outputs are
/// accumulated as Σ f(tile)·w / Σ w, the product taken in float64 and accumulated in float32 like the reference.
/// When h·w ≤ tile² the function runs once on the whole latent (no blending).
/// </remarks>
public sealed class LatentTiler
{
    /// <summary>The reference's default tile side (latent pixels, <c>--latent_tiled_size</c>).</summary>
    public const int DefaultTileSize = 96;

    /// <summary>The reference's default overlap (<c>--latent_tiled_overlap</c>).</summary>
    public const int DefaultOverlap = 32;

    /// <summary>
    /// Default tile side in image pixels for codecs other than SD's VAE (the compact model): the tile only bounds the
    /// CFR attention and memory, which are small there, so a 720p frame (1280×720 ≤ 1024² px) runs as one tile at any
    /// codec factor: no overlap recomputation, and the same whole-frame result the model was evaluated with.
    /// </summary>
    public const int CodecTilePixels = 1024;

    /// <summary>Default overlap in image pixels for codecs other than SD's VAE (the reference's 32 latent px × 8).</summary>
    public const int CodecOverlapPixels = 256;

    /// <summary>The tiler for a codec: <paramref name="tileSize"/>/<paramref name="overlap"/> when given, else the
    /// reference's 96/32 for SD's VAE (<paramref name="isSdVae"/>) or 1024/256 px divided by the codec factor.</summary>
    public static LatentTiler ForCodec(int? tileSize, int? overlap, bool isSdVae, int codecFactor)
    {
        int tile = tileSize ?? (isSdVae ? DefaultTileSize : CodecTilePixels / codecFactor);
        // A default overlap shrinks with a smaller explicit tile (to a third, the reference's 32/96); an explicit one must fit.
        int over = overlap ?? Math.Min(isSdVae ? DefaultOverlap : CodecOverlapPixels / codecFactor, tile / 3);
        if (over >= tile) throw new UpscaleOptionsException($"tile overlap must be smaller than the tile, got {over} with tile {tile} latent px", "tile-overlap");
        return new LatentTiler(tile, over);
    }

    public LatentTiler(int tileSize = DefaultTileSize, int overlap = DefaultOverlap)
    {
        if (tileSize < 1) throw new ArgumentOutOfRangeException(nameof(tileSize), tileSize, "tile size must be at least 1");
        if (overlap < 0 || overlap >= tileSize) throw new ArgumentOutOfRangeException(nameof(overlap), overlap, $"overlap must be in [0, tile size {tileSize})");
        TileSize = tileSize;
        Overlap = overlap;
    }

    public int TileSize { get; }

    public int Overlap { get; }

    /// <summary>True when a latent of this size is processed in tiles (the reference's h·w &gt; tile² rule).</summary>
    public bool NeedsTiling(long height, long width) => height * width > (long)TileSize * TileSize;

    /// <summary>The tiles covering a latent of this size (one whole-latent tile when no tiling is needed).</summary>
    public IReadOnlyList<LatentTile> Plan(int height, int width)
    {
        if (height < 1 || width < 1) throw new ArgumentOutOfRangeException(nameof(height), $"latent size must be positive, got {height}x{width}");
        if (!NeedsTiling(height, width)) return [new LatentTile(0, 0, height, width)];
        int tile = Math.Min(TileSize, Math.Min(height, width));
        var xs = Offsets(width, tile);
        var ys = Offsets(height, tile);
        var tiles = new List<LatentTile>(xs.Count * ys.Count);
        foreach (int x in xs)
            foreach (int y in ys)
                tiles.Add(new LatentTile(y, x, tile, tile));
        return tiles;
    }

    private List<int> Offsets(int size, int tile)
    {
        // The reference counts tiles with: while cur < size: cur = max(n*tile - overlap*n, 0) + tile; n++.
        int count = 0;
        long cur = 0;
        while (cur < size)
        {
            cur = Math.Max((long)count * tile - (long)Overlap * count, 0) + tile;
            count++;
        }
        var offsets = new List<int>(count);
        for (int i = 0; i < count; i++)
            offsets.Add(i == count - 1 ? size - tile : Math.Max(i * tile - Overlap * i, 0));
        return offsets;
    }

    /// <summary>
    /// Runs <paramref name="tileFunction"/> on every tile of an <paramref name="height"/>×<paramref name="width"/>
    /// latent and blends. The function returns [B,C,tile.Height,tile.Width]; the result is [B,C,height,width]
    /// in the function's dtype. Each tile's output is released once accumulated.
    /// </summary>
    public Tensor Run(int height, int width, Func<LatentTile, Tensor> tileFunction)
    {
        ArgumentNullException.ThrowIfNull(tileFunction);
        var plan = Plan(height, width);
        if (!NeedsTiling(height, width)) return tileFunction(plan[0]);

        using var scope = NewDisposeScope();
        Tensor? acc = null, contributors = null, weights = null;
        ScalarType outType = ScalarType.Float32;
        foreach (var tile in plan)
        {
            using var inner = NewDisposeScope();
            var y = tileFunction(tile);
            if (y.dim() != 4 || y.shape[2] != tile.Height || y.shape[3] != tile.Width)
                throw new InvalidOperationException($"tile function returned [{string.Join(",", y.shape)}] for a {tile.Height}x{tile.Width} tile; expected [B,C,{tile.Height},{tile.Width}]");
            if (acc is null)
            {
                outType = y.dtype;
                var accType = y.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
                acc = zeros([y.shape[0], y.shape[1], height, width], accType, y.device).MoveToOuterDisposeScope();
                contributors = zeros([1, 1, height, width], accType, y.device).MoveToOuterDisposeScope();
                weights = GaussianTileWeights.AsTensor(tile.Width, tile.Height, y.device).MoveToOuterDisposeScope();
            }
            var weighted = (y.to_type(ScalarType.Float64) * weights!).to_type(acc.dtype);
            tile.Slice(acc).add_(weighted);
            tile.Slice(contributors!).add_(weights!.to_type(acc.dtype));
        }
        return acc!.div_(contributors!).to_type(outType).MoveToOuterDisposeScope();
    }

    /// <summary>Convenience: tiles <paramref name="latent"/> [B,C,H,W] and applies <paramref name="function"/> to each tile.</summary>
    public Tensor Run(Tensor latent, Func<Tensor, Tensor> function)
    {
        ArgumentNullException.ThrowIfNull(latent);
        ArgumentNullException.ThrowIfNull(function);
        return Run((int)latent.shape[^2], (int)latent.shape[^1], tile => function(tile.Slice(latent)));
    }
}
