using Dloral.Diffusion;
using Dloral.Pipeline;
using Dloral.Tests.Diffusion;
using Dloral.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Pipeline;

public class TiledVaeTests(ITestOutputHelper output)
{
    /// <summary>A smooth colour image in [−1, 1]: low-frequency sinusoids, different per channel.</summary>
    private static Tensor SmoothImage(long h, long w)
    {
        var y = linspace(0, 1, h).view(1, 1, h, 1);
        var x = linspace(0, 1, w).view(1, 1, 1, w);
        var channels = new List<Tensor>();
        for (int c = 0; c < 3; c++)
            channels.Add(0.8 * (sin(x * (2.0 + c) + y * (1.3 - 0.4 * c) + c) * cos(y * (1.7 + 0.5 * c) - x * 0.6)));
        return cat(channels, 1);
    }

    /// <summary>
    /// Mean |jump| across the core boundaries of the tiled result minus the untiled result's jump there, relative to the
    /// same quantity on all other columns/rows: ≈1 means the boundaries are like anywhere else (no seam).
    /// </summary>
    private static double SeamRatio(Tensor tiled, Tensor untiled, IEnumerable<long> rowBoundaries, IEnumerable<long> colBoundaries)
    {
        using var scope = NewDisposeScope();
        var dyT = tiled[.., .., 1.., ..] - tiled[.., .., ..^1, ..];
        var dyU = untiled[.., .., 1.., ..] - untiled[.., .., ..^1, ..];
        var dxT = tiled[.., .., .., 1..] - tiled[.., .., .., ..^1];
        var dxU = untiled[.., .., .., 1..] - untiled[.., .., .., ..^1];
        var ey = (dyT - dyU).abs().mean([0, 1, 3]); // per row transition
        var ex = (dxT - dxU).abs().mean([0, 1, 2]); // per column transition
        var rows = rowBoundaries.Select(b => b - 1).ToArray();
        var cols = colBoundaries.Select(b => b - 1).ToArray();
        double atSeams = (ey[tensor(rows)].sum().item<float>() + ex[tensor(cols)].sum().item<float>()) / (rows.Length + cols.Length);
        double elsewhere = (ey.sum().item<float>() + ex.sum().item<float>() - atSeams * (rows.Length + cols.Length))
            / (ey.shape[0] + ex.shape[0] - rows.Length - cols.Length);
        return atSeams / elsewhere;
    }

    [Fact]
    public void TileSpans_partition_the_axis_into_aligned_cores_with_context()
    {
        Assert.Equal([(0L, 64L, 0L, 64L)], TiledVae.TileSpans(64, 64, 16, 8));
        var spans = TiledVae.TileSpans(200, 64, 16, 8);
        Assert.Equal(4, spans.Count);
        long next = 0;
        foreach (var (start, length, core, coreLength) in spans)
        {
            Assert.Equal(next, core);
            Assert.True(coreLength <= 64 && core % 8 == 0);
            Assert.Equal(Math.Max(0, core - 16), start);
            Assert.Equal(Math.Min(200, core + coreLength + 16), start + length);
            next = core + coreLength;
        }
        Assert.Equal(200, next);
    }

    /// <summary>
    /// Mechanics check: a VAE without mid-block attention, tiles whose context covers the receptive field, and the
    /// whole image's GroupNorm statistics ⇒ tiling is exact up to float rounding. Per-tile statistics are not.
    /// </summary>
    [Fact]
    public void Tiling_is_exact_when_context_covers_receptive_field_and_statistics_are_global()
    {
        TorchRuntime.Initialize();
        using var scope = NewDisposeScope();
        manual_seed(7);
        var config = new AutoencoderKLConfig
        {
            BlockOutChannels = [8, 16], DownBlockTypes = ["DownEncoderBlock2D", "DownEncoderBlock2D"],
            UpBlockTypes = ["UpDecoderBlock2D", "UpDecoderBlock2D"], LayersPerBlock = 1, NormNumGroups = 4, MidBlockAddAttention = false,
        };
        using var vae = new AutoencoderKL(config);
        using (no_grad())
            foreach (var (name, p) in vae.named_parameters())
                if (name.Contains("norm")) p.copy_(name.EndsWith("weight") ? 1 + 0.2 * randn_like(p) : 0.2 * randn_like(p));
        using var guard = inference_mode();
        var image = SmoothImage(96, 128);
        var moments = vae.EncodeMoments(image);
        var latent = moments.chunk(2, 1)[0];
        var decoded = vae.Decode(latent);

        // Receptive field radius: encoder ≈ 4 px at 1× + 7 convs at 2× ≈ 18 px; decoder ≈ 10 latent px.
        var exact = new TiledVae(vae, new TiledVaeOptions { Normalization = TileNormalization.DownscaledWhole, EncoderTile = 32, EncoderPad = 24, DecoderTile = 16, DecoderPad = 12, EncoderStatsMaxSide = 128, DecoderStatsMaxSide = 64 });
        var tMoments = exact.EncodeMoments(image);
        var tDecoded = exact.Decode(latent);
        output.WriteLine($"global stats: moments max|diff| {TensorAssert.MaxAbsDiff(moments, tMoments):G3}, decoded {TensorAssert.MaxAbsDiff(decoded, tDecoded):G3}");
        // Only summation order differs (convolutions over different extents, the fixed-statistics GroupNorm formula):
        // float32 noise, ~1e-5 of |ref| ≈ 2.7; per-tile statistics below are ~100× further off.
        TensorAssert.Close(moments, tMoments, 5e-5, 1e-4, "tiled encode (exact setting)");
        TensorAssert.Close(decoded, tDecoded, 5e-5, 1e-4, "tiled decode (exact setting)");

        var perTile = new TiledVae(vae, exact.Options with { Normalization = TileNormalization.PerTile });
        double perTileDiff = TensorAssert.MaxAbsDiff(decoded, perTile.Decode(latent));
        output.WriteLine($"per-tile stats: decoded max|diff| {perTileDiff:G3}");
        Assert.True(perTileDiff > 1e-3, "per-tile GroupNorm statistics should differ measurably (else the test proves nothing)");

        double Rel(Tensor t) => ((t.to_type(ScalarType.Float32) - decoded).norm() / decoded.norm()).item<float>();
        // Statistics from a 2× downscaled latent are far off on this random model (why PerTile is the default).
        output.WriteLine($"fp32 tiled, statistics from a 2x downscaled latent: relative L2 {Rel(new TiledVae(vae, exact.Options with { DecoderStatsMaxSide = 8 }).Decode(latent)):G3}");
        output.WriteLine($"fp32 tiled, per-tile statistics: relative L2 {Rel(perTile.Decode(latent)):G3}");

        // bfloat16 runs through the tiler (fixed-statistics GroupNorm included) and stays as close as untiled bf16 is.
        vae.to(ScalarType.BFloat16);
        double untiledRel = Rel(vae.Decode(latent.to_type(ScalarType.BFloat16)));
        var bDecoded = exact.Decode(latent.to_type(ScalarType.BFloat16));
        Assert.Equal(ScalarType.BFloat16, bDecoded.dtype);
        double rel = Rel(bDecoded);
        output.WriteLine($"bf16: untiled relative L2 vs fp32 {untiledRel:G3}, tiled {rel:G3}");
        Assert.True(rel < 2 * untiledRel + 0.01, $"bf16 tiled decode relative error {rel} vs untiled bf16 {untiledRel}");
    }

    /// <summary>
    /// The golden tiny VAE (random weights, single-head mid attention over all pixels) at 192×256: tiles see only
    /// their own pixels in the mid-block attention, which with untrained weights is close to a global average, so
    /// tiled ≠ untiled by design (the reference's tiling hooks do the same). What must hold: no seams at core borders,
    /// and global statistics do better than per-tile ones.
    /// </summary>
    [Fact]
    public void Tiled_tiny_vae_has_no_seams_and_bounded_error()
    {
        TorchRuntime.Initialize();
        using var vae = AutoencoderKLTests.LoadTinyVae();
        using var scope = NewDisposeScope();
        using var guard = inference_mode();
        var image = SmoothImage(192, 256);
        var mean = vae.EncodeMoments(image).chunk(2, 1)[0];
        var decoded = vae.Decode(mean);
        var options = new TiledVaeOptions { Normalization = TileNormalization.DownscaledWhole, EncoderTile = 96, EncoderPad = 32, DecoderTile = 8, DecoderPad = 6, EncoderStatsMaxSide = 256, DecoderStatsMaxSide = 32 };
        var results = new Dictionary<TileNormalization, (double Enc, double Dec, double DecMean, double Seams)>();
        foreach (var mode in new[] { TileNormalization.PerTile, TileNormalization.DownscaledWhole })
        {
            var tiled = new TiledVae(vae, options with { Normalization = mode });
            var tMean = tiled.EncodeMean(image);
            var tDecoded = tiled.Decode(mean);
            var rows = TiledVae.TileSpans(24, 8, 6, 1).Skip(1).Select(s => s.CoreStart * 8);
            var cols = TiledVae.TileSpans(32, 8, 6, 1).Skip(1).Select(s => s.CoreStart * 8);
            double seams = SeamRatio(tDecoded, decoded, rows, cols);
            results[mode] = (TensorAssert.MaxAbsDiff(mean, tMean), TensorAssert.MaxAbsDiff(decoded, tDecoded),
                (decoded - tDecoded).abs().mean().item<float>(), seams);
            output.WriteLine($"{mode}: encode mean max|diff| {results[mode].Enc:G3} (max|ref| {mean.abs().max().item<float>():G3}); " +
                $"decode max|diff| {results[mode].Dec:G3}, mean|diff| {results[mode].DecMean:G3} (max|ref| {decoded.abs().max().item<float>():G3}); seam ratio {seams:G3}");
        }
        var g = results[TileNormalization.DownscaledWhole];
        Assert.True(g.Seams < 1.5, $"seam ratio {g.Seams}: core borders jump more than other pixels");
        var p = results[TileNormalization.PerTile];
        Assert.True(p.Seams < 1.5 && p.DecMean < 0.1, $"per-tile (default): seam ratio {p.Seams}, mean decode error {p.DecMean}");
        Assert.True(g.DecMean < 0.1, $"mean decode error {g.DecMean}");
        Assert.True(g.DecMean <= results[TileNormalization.PerTile].DecMean, "global statistics should not be worse than per-tile ones");
    }
}
