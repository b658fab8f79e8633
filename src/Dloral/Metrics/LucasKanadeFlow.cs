using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Metrics;

/// <summary>
/// Classical dense optical flow: coarse-to-fine (Gaussian pyramid) iterative Lucas–Kanade with a Gaussian
/// window, warping the second image by the current estimate at every iteration, and a small Tikhonov term on
/// the 2×2 structure tensor so textureless regions keep the coarse estimate instead of exploding. Written in
/// TorchSharp so it runs wherever the model runs; no learned weights.
/// </summary>
public sealed class LucasKanadeFlow : IOpticalFlowEstimator
{
    /// <summary>Most pyramid levels used (the coarsest level stays at least <see cref="MinLevelSize"/> pixels).</summary>
    public int MaxLevels { get; init; } = 6;

    /// <summary>Smallest side of the coarsest pyramid level.</summary>
    public int MinLevelSize { get; init; } = 16;

    /// <summary>Gauss–Newton iterations per level.</summary>
    public int Iterations { get; init; } = 5;

    /// <summary>σ of the Gaussian integration window, in pixels of each level.</summary>
    public double WindowSigma { get; init; } = 4.0;

    /// <summary>Tikhonov term added to the structure tensor (intensity²; intensities in [0,1]).</summary>
    public double Regularization { get; init; } = 1e-5;

    /// <summary>Largest update per iteration, in pixels (keeps ill-conditioned pixels from diverging).</summary>
    public double MaxStep { get; init; } = 1.0;

    public string Name => $"pyramidal Lucas-Kanade (classical, dense, Gaussian window sigma={WindowSigma}, {Iterations} iterations/level)";

    public Tensor Estimate(Tensor from, Tensor to)
    {
        if (!from.shape.SequenceEqual(to.shape))
            throw new ArgumentException($"optical flow: frame shapes differ: [{string.Join(",", from.shape)}] vs [{string.Join(",", to.shape)}]");
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var a = Gray(from);
        var b = Gray(to);
        var pa = Pyramid(a);
        var pb = Pyramid(b);
        Tensor? flow = null;
        for (int level = pa.Count - 1; level >= 0; level--)
        {
            var la = pa[level];
            var lb = pb[level];
            long h = la.shape[2], w = la.shape[3];
            if (flow is null)
            {
                flow = zeros(la.shape[0], 2, h, w, dtype: la.dtype, device: la.device);
            }
            else
            {
                double sx = (double)w / flow.shape[3], sy = (double)h / flow.shape[2];
                var up = nn.functional.interpolate(flow, size: [h, w], mode: InterpolationMode.Bilinear, align_corners: false);
                flow = up * tensor(new[] { (float)sx, (float)sy }, device: la.device).view(1, 2, 1, 1);
            }
            for (int it = 0; it < Iterations; it++) flow = flow + Step(la, lb, flow);
        }
        return flow!.MoveToOuterDisposeScope();
    }

    private static Tensor Gray(Tensor rgb)
    {
        var t = rgb.dim() == 3 ? rgb.unsqueeze(0) : rgb;
        if (t.dim() != 4 || (t.shape[1] != 3 && t.shape[1] != 1))
            throw new ArgumentException($"optical flow: expected RGB [3,H,W] or [N,3,H,W], got [{string.Join(",", rgb.shape)}]");
        t = t.to_type(ScalarType.Float32);
        return t.shape[1] == 3 ? ColorSpace.RgbToGray(t) : t;
    }

    private List<Tensor> Pyramid(Tensor image)
    {
        // Pre-smoothing both images identically does not move features but makes derivatives reliable.
        var levels = new List<Tensor> { Blur(image, 1.0) };
        while (levels.Count < MaxLevels)
        {
            var last = levels[^1];
            if (Math.Min(last.shape[2], last.shape[3]) < 2 * MinLevelSize) break;
            levels.Add(nn.functional.avg_pool2d(Blur(last, 1.0), 2));
        }
        return levels;
    }

    // Scalars passed to libtorch are held in variables that outlive the call: TorchSharp does not keep an implicitly
    // converted Scalar alive during the native call, so a garbage collection started by another thread (the video job's
    // reader and writer allocate frames) could free it mid-call (seen as "toFloat" errors under load).
    private static readonly Scalar Half = 0.5.ToScalar();

    private Tensor Step(Tensor a, Tensor b, Tensor flow)
    {
        // Few native calls per step: at the coarse levels (45×80 and smaller) the per-op overhead, not arithmetic, is
        // the cost, and 20 steps run per frame pair.
        using var scope = NewDisposeScope();
        var bw = FlowWarping.Warp(b, flow);
        var it = bw - a;
        var (ix, iy) = Gradients((a + bw).mul_(Half));
        var grad = cat([ix, iy], 1);                                     // [ix, iy]
        var products = cat([grad * ix, iy * iy, grad * it], dim: 1);     // [ix², ix·iy, iy², ix·it, iy·it]
        var s = Blur(products, WindowSigma);
        var sxy = s.narrow(1, 1, 1);
        using var regularization = Regularization.ToScalar();
        var diagonal = s.slice(1, 0, 3, 2).flip(1).add_(regularization);       // [syy, sxx] (+ Tikhonov)
        var rhs = s.narrow(1, 3, 2);                                           // [sxt, syt]
        // [du, dv] = −([syy·sxt, sxx·syt] − sxy·[syt, sxt]) / (sxx·syy − sxy²)
        var numerator = (diagonal * rhs).sub_(sxy * rhs.flip(1));
        var det = (diagonal.narrow(1, 0, 1) * diagonal.narrow(1, 1, 1)).sub_(sxy * sxy);
        using var lowest = (-MaxStep).ToScalar();
        using var highest = MaxStep.ToScalar();
        var step = numerator.div_(det).neg_().clamp_(lowest, highest);
        return step.MoveToOuterDisposeScope();
    }

    private static (Tensor Ix, Tensor Iy) Gradients(Tensor image)
    {
        var padded = nn.functional.pad(image, [1, 1, 1, 1], PaddingModes.Replicate);
        long h = image.shape[2], w = image.shape[3];
        var ix = (padded[.., .., 1..(int)(h + 1), 2..(int)(w + 2)] - padded[.., .., 1..(int)(h + 1), 0..(int)w]).mul_(Half);
        var iy = (padded[.., .., 2..(int)(h + 2), 1..(int)(w + 1)] - padded[.., .., 0..(int)h, 1..(int)(w + 1)]).mul_(Half);
        return (ix, iy);
    }

    /// <summary>
    /// Separable Gaussian blur per channel with replicate padding. Large images: weighted sums of shifted slices (rows,
    /// then columns; the depthwise conv2d this replaced took half of the flow's time on 720p frames). Images with both
    /// sides ≤ <see cref="MatrixBlurMaxSide"/>: two matrix products with the banded blur matrices (replicate padding folded
    /// into the edge rows), 2 native calls instead of 4·radius+2 — 5–9× faster at the coarse pyramid levels.
    /// </summary>
    internal static Tensor Blur(Tensor x, double sigma)
    {
        int radius = Math.Max(1, (int)Math.Ceiling(2.5 * sigma));
        int size = 2 * radius + 1;
        // Replicate padding needs the pad to be smaller than the image; tiny levels are returned unblurred.
        if (Math.Min(x.shape[2], x.shape[3]) - 1 < radius) return x;
        using var scope = NewDisposeScope();
        var g = Ssim.GaussianWeights(size, sigma);
        long h = x.shape[2], w = x.shape[3];
        if (Math.Max(h, w) <= MatrixBlurMaxSide)
        {
            var columns = BlurMatrix(w, g, x.dtype, x.device).t();   // x · Mᵀ blurs along rows
            var rowsMatrix = BlurMatrix(h, g, x.dtype, x.device);   // M · x blurs along columns
            return matmul(rowsMatrix, matmul(x, columns)).MoveToOuterDisposeScope();
        }
        var p = nn.functional.pad(x, [radius, radius, radius, radius], PaddingModes.Replicate);
        var weights = g.Select(v => v.ToScalar()).ToArray();
        try
        {
            var rows = p.narrow(2, 0, h).mul(weights[0]);
            for (int i = 1; i < size; i++) rows.add_(p.narrow(2, i, h), weights[i]);
            var cols = rows.narrow(3, 0, w).mul(weights[0]);
            for (int i = 1; i < size; i++) cols.add_(rows.narrow(3, i, w), weights[i]);
            return cols.MoveToOuterDisposeScope();
        }
        finally
        {
            foreach (var weight in weights) weight.Dispose();
        }
    }

    /// <summary>Largest side blurred by matrix products (the dense n×n matrix costs n multiply-adds per pixel).</summary>
    internal const int MatrixBlurMaxSide = 200;

    /// <summary>
    /// M [n,n] with (M·v)[o] = Σᵢ g[i]·v[clamp(o − r + i, 0, n − 1)]: the blur with replicate padding. Built once per
    /// size and window (a handful per video): rebuilding the float arrays for every call made large-object garbage.
    /// </summary>
    private static Tensor BlurMatrix(long n, double[] g, ScalarType dtype, Device device)
    {
        var key = (n, g.Length, g[0], dtype, device.ToString());
        lock (BlurMatrices)
        {
            if (!BlurMatrices.TryGetValue(key, out var cached))
            {
                int radius = g.Length / 2;
                var m = new float[n * n];
                for (long o = 0; o < n; o++)
                    for (int i = 0; i < g.Length; i++)
                        m[o * n + Math.Clamp(o - radius + i, 0, n - 1)] += (float)g[i];
                using var ordinary = inference_mode(false); // an ordinary tensor, usable in and out of inference mode
                using var cpu = tensor(m, [n, n]);
                cached = cpu.to(dtype, device).DetachFromDisposeScope();
                if (BlurMatrices.Count >= 64) // many frame sizes in one process: start over (callers hold their own aliases)
                {
                    foreach (var t in BlurMatrices.Values) t.Dispose();
                    BlurMatrices.Clear();
                }
                BlurMatrices[key] = cached;
            }
            return cached.alias();
        }
    }

    private static readonly Dictionary<(long, int, double, ScalarType, string), Tensor> BlurMatrices = [];
}
