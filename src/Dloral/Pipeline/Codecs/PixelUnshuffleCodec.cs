using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Pipeline.Codecs;

/// <summary>
/// A lossless latent codec: pixel-unshuffle by a factor f ([3,H,W] → [3f²,H/f,W/f]), optionally followed by a fixed
/// orthonormal 1×1 channel mixing (colour: an orthonormal luma/chroma basis; space: the orthonormal 2-D DCT-II of each
/// f×f block), then × <see cref="ScalingFactor"/>. Decode is the exact inverse (transpose, pixel-shuffle), so nothing is
/// lost: no 8×-VAE damage to text and fine texture, and no encoder/decoder cost beyond a reshape (and one 1×1 conv).
/// </summary>
/// <remarks>
/// With mixing the channels are ordered by spatial frequency (u+v, then u), colour-minor: channels 0–2 are the block
/// means (DC) of luma and the two chroma axes, so the low channels carry what bicubic upscaling already gets right and
/// the residual step <c>z − ε̂</c> mostly has to touch the high ones. The default scale 1/f maps the DC coefficient
/// (f × block mean) back to the pixel range. Sizes not divisible by f are an error (no silent padding).
/// </remarks>
public sealed class PixelUnshuffleCodec : nn.Module<Tensor, Tensor>, IDihedralLatentCodec
{
    // The mixing is one 1×1 convolution with the [3f², 3f²] matrix on the pixel-unshuffled image (scale folded in):
    // a GEMM, 2.2× faster at 720p than applying colour and DCT separably as einsums (bench unet-ops), and within float32
    // rounding of the exact transform (the round trip stays ≤ 1e-6, tested).
    private readonly Tensor? encodeWeight; // [C,C,1,1] = scale · M
    private readonly Tensor? decodeWeight; // [C,C,1,1] = Mᵀ / scale (M is orthonormal)

    /// <param name="factor">The unshuffle factor f (latent channels 3f²).</param>
    /// <param name="orthonormalMixing">Apply the fixed colour ⊗ DCT orthonormal mixing (otherwise plain unshuffle).</param>
    /// <param name="scalingFactor">Latent scale; null = 1/f.</param>
    public PixelUnshuffleCodec(int factor, bool orthonormalMixing = true, double? scalingFactor = null) : base(nameof(PixelUnshuffleCodec))
    {
        if (factor < 1) throw new ArgumentOutOfRangeException(nameof(factor), factor, "the unshuffle factor must be ≥ 1");
        DownscaleFactor = factor;
        ScalingFactor = scalingFactor ?? 1.0 / factor;
        if (!(ScalingFactor > 0) || !double.IsFinite(ScalingFactor))
            throw new ArgumentOutOfRangeException(nameof(scalingFactor), scalingFactor, "the latent scale must be positive and finite");
        OrthonormalMixing = orthonormalMixing;
        if (orthonormalMixing)
        {
            using var m = MixingMatrix64(factor);
            long c = LatentChannels;
            encodeWeight = (m * ScalingFactor).to_type(ScalarType.Float32).view(c, c, 1, 1).DetachFromDisposeScope();
            decodeWeight = (m.t() / ScalingFactor).contiguous().to_type(ScalarType.Float32).view(c, c, 1, 1).DetachFromDisposeScope();
        }
        RegisterComponents();
    }

    public int DownscaleFactor { get; }

    public int LatentChannels => 3 * DownscaleFactor * DownscaleFactor;

    public double ScalingFactor { get; }

    /// <summary>Whether the fixed orthonormal mixing is applied.</summary>
    public bool OrthonormalMixing { get; }

    public ScalarType DType => encodeWeight?.dtype ?? _dtype;

    private ScalarType _dtype = ScalarType.Float32;

    /// <summary>Moves the codec to a dtype (the mixing matrix is kept in it).</summary>
    public PixelUnshuffleCodec ToDType(ScalarType dtype)
    {
        _dtype = dtype;
        this.to(dtype);
        return this;
    }

    /// <summary>
    /// The [3f², 3f²] orthonormal matrix (rows = output channels, columns = pixel-unshuffle channels c·f² + y·f + x),
    /// computed in float64 and returned as float32.
    /// </summary>
    public static Tensor MixingMatrix(int factor)
    {
        using var m = MixingMatrix64(factor);
        return m.to_type(ScalarType.Float32);
    }

    private static Tensor MixingMatrix64(int factor)
    {
        int f = factor, c = 3 * f * f;
        var colour = ColourBasis();
        var d = DctBasis(f);
        var m = new double[c * c];
        int row = 0;
        foreach (var (u, v, a) in Order(f))
        {
            for (int col = 0; col < 3; col++)
                for (int y = 0; y < f; y++)
                    for (int x = 0; x < f; x++)
                        m[row * c + col * f * f + y * f + x] = colour[a, col] * d[u, y] * d[v, x];
            row++;
        }
        return tensor(m, [c, c], ScalarType.Float64);
    }

    /// <summary>Orthonormal colour basis: a luma-like mean, then two orthogonal chroma differences.</summary>
    private static double[,] ColourBasis() => new[,]
    {
        { 1 / Math.Sqrt(3), 1 / Math.Sqrt(3), 1 / Math.Sqrt(3) },
        { 1 / Math.Sqrt(2), 0, -1 / Math.Sqrt(2) },
        { 1 / Math.Sqrt(6), -2 / Math.Sqrt(6), 1 / Math.Sqrt(6) },
    };

    /// <summary>The orthonormal DCT-II matrix d[k, n].</summary>
    private static double[,] DctBasis(int f)
    {
        var d = new double[f, f];
        for (int k = 0; k < f; k++)
            for (int n = 0; n < f; n++)
                d[k, n] = (k == 0 ? Math.Sqrt(1.0 / f) : Math.Sqrt(2.0 / f)) * Math.Cos(Math.PI * (2 * n + 1) * k / (2.0 * f));
        return d;
    }

    /// <summary>Output channel order: frequency (u+v, then u, then v), colour-minor.</summary>
    private static IEnumerable<(int u, int v, int a)> Order(int f) =>
        from uv in (from u in Enumerable.Range(0, f) from v in Enumerable.Range(0, f) select (u, v)).OrderBy(p => p.u + p.v).ThenBy(p => p.u)
        from a in Enumerable.Range(0, 3)
        select (uv.u, uv.v, a);

    /// <summary>Same as <see cref="Encode"/>.</summary>
    public override Tensor forward(Tensor images) => Encode(images);

    public Tensor Encode(Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.dim() != 4 || images.shape[1] != 3)
            throw new ArgumentException($"PixelUnshuffleCodec.Encode expects images [n,3,H,W], got [{string.Join(",", images.shape)}]", nameof(images));
        long h = images.shape[2], w = images.shape[3];
        int f = DownscaleFactor;
        if (h % f != 0 || w % f != 0)
            throw new ArgumentException($"PixelUnshuffleCodec: image size {h}x{w} is not a multiple of the factor {f} (pad or crop first)", nameof(images));
        using var scope = NewDisposeScope();
        var x = nn.functional.pixel_unshuffle(images.to(DType), f);   // channel c·f² + y·f + x
        x = encodeWeight is null ? x * ScalingFactor : nn.functional.conv2d(x, encodeWeight.to(x.device));
        return x.MoveToOuterDisposeScope();
    }

    public Tensor Decode(Tensor latents)
    {
        ArgumentNullException.ThrowIfNull(latents);
        if (latents.dim() != 4 || latents.shape[1] != LatentChannels)
            throw new ArgumentException($"PixelUnshuffleCodec.Decode expects latents [n,{LatentChannels},h,w], got [{string.Join(",", latents.shape)}]", nameof(latents));
        int f = DownscaleFactor;
        using var scope = NewDisposeScope();
        var x = latents.to(DType);
        x = decodeWeight is null ? x / ScalingFactor : nn.functional.conv2d(x, decodeWeight.to(x.device));
        return nn.functional.pixel_shuffle(x, f).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Exact, because the codec is linear and works block by block: the image transform moves whole f×f blocks as the
    /// grid transform does and transforms each block inside, so encode(transform(decode(z))) = M·transform(z) with a
    /// fixed C×C channel map M (a signed permutation for the DCT mixing), found once by transforming the basis latents.
    /// </summary>
    public Tensor Dihedral(Tensor latents, int k, bool inverse = false)
    {
        ArgumentNullException.ThrowIfNull(latents);
        if (k == 0) return latents.alias();
        using var scope = NewDisposeScope();
        var grid = inverse ? SelfEnsemble.Invert(latents, k) : SelfEnsemble.Apply(latents, k);
        var map = ChannelMap(k, inverse).to(grid.dtype, grid.device);
        return einsum("ji,nihw->njhw", map, grid).MoveToOuterDisposeScope();
    }

    private readonly Dictionary<(int, bool), Tensor> _channelMaps = [];

    /// <summary>M[j,i] = channel j of the latent of the transformed image of basis latent i (one block; cached in float64).</summary>
    private Tensor ChannelMap(int k, bool inverse)
    {
        lock (_channelMaps)
        {
            if (_channelMaps.TryGetValue((k, inverse), out var cached)) return cached;
            using var scope = NewDisposeScope();
            int c = LatentChannels;
            var device = encodeWeight?.device ?? CPU;
            var basis = eye(c, dtype: DType, device: device).view(c, c, 1, 1);
            var image = Decode(basis);                                                        // [C,3,f,f]
            var moved = inverse ? SelfEnsemble.Invert(image, k) : SelfEnsemble.Apply(image, k);
            var map = Encode(moved).view(c, c).t().to_type(ScalarType.Float64);              // column i = image of basis i
            // Both mixings make it a signed permutation; rounding removes the float32 error of the DCT basis.
            if ((map - map.round()).abs().max().item<double>() < 1e-4) map = map.round();
            return _channelMaps[(k, inverse)] = map.contiguous().DetachFromDisposeScope();
        }
    }

    public void Eval() => eval();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            lock (_channelMaps)
            {
                foreach (var map in _channelMaps.Values) map.Dispose();
                _channelMaps.Clear();
            }
        base.Dispose(disposing);
    }
}
