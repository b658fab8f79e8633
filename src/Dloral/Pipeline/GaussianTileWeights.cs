using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Pipeline;

/// <summary>
/// The reference's tile blending weights (<c>Generator_eval._gaussian_weights</c>), in float64.
/// </summary>
/// <remarks>
/// Reproduced as is, including its asymmetry: x is centred at (w−1)/2 but y at h/2, so a tile's weights
/// are not symmetric top to bottom. var = 0.01; value = exp(−(i−mid)²/n²/(2·var)) / √(2π·var).
/// The reference takes exp from numpy, which on AVX-512 machines runs Intel SVML's vector exp (up to a
/// few ulp from the correctly rounded value; numpy 1.22–1.26 call <c>__svml_exp8</c>). <see cref="NumpyExp"/>
/// transcribes that kernel so the weights equal the reference bit for bit (Math.Exp differs by 1 ulp in
/// a quarter of the values, 3.6e-15 after the outer product).
/// </remarks>
public static class GaussianTileWeights
{
    private const double Var = 0.01;

    /// <summary>Weights [height,width] as a row-major double array.</summary>
    public static double[] Compute(int width, int height)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"tile size must be positive, got {width}x{height}");
        var x = Probabilities(width, (width - 1) / 2.0);
        var y = Probabilities(height, height / 2.0);
        var w = new double[height * width];
        for (int i = 0; i < height; i++)
            for (int j = 0; j < width; j++)
                w[i * width + j] = y[i] * x[j];
        return w;
    }

    /// <summary>Weights as a float64 tensor [height,width] on <paramref name="device"/>.</summary>
    public static Tensor AsTensor(int width, int height, Device? device = null) =>
        tensor(Compute(width, height), [height, width], ScalarType.Float64, device);

    private static double[] Probabilities(int n, double midpoint)
    {
        var p = new double[n];
        double norm = Math.Sqrt(2 * Math.PI * Var);
        for (int i = 0; i < n; i++)
        {
            double d = i - midpoint;
            // Same operation order as the reference (numpy float64): exp(-d*d / (n*n) / (2*var)) / sqrt(2*pi*var).
            p[i] = NumpyExp(-d * d / (n * n) / (2 * Var)) / norm;
        }
        return p;
    }

    // 2^(j/16), j = 0..15: the table of SVML's AVX-512 double exp (svml_z0_exp_d_la.s).
    private static readonly double[] Th =
    [
        D(0, 1072693248), D(1828292879, 1072739672), D(1014845819, 1072788152), D(1853186616, 1072838778),
        D(171030293, 1072891646), D(1276261410, 1072946854), D(3577096743, 1073004506), D(3712504873, 1073064711),
        D(1719614413, 1073127582), D(1944781191, 1073193236), D(1110089947, 1073261797), D(2191782032, 1073333393),
        D(2572866477, 1073408159), D(3716502172, 1073486235), D(3707479175, 1073567768), D(2728693978, 1073652911),
    ];

    private static readonly double Log2E = D(1697350398, 1073157447);
    private static readonly double Ln2Hi = D(4277811695, 1072049730);
    private static readonly double Ln2Lo = D(993624127, 1014676638);
    private static readonly double C2 = D(9762, 1071644672);
    private static readonly double C3 = D(1421150370, 1069897045);
    private static readonly double C4 = D(1270150640, 1067799894);
    private static readonly double C5 = D(64584704, 1065422950);
    private static readonly double C6 = D(4010615101, 1062678197);

    private static double D(uint lo, uint hi) => BitConverter.UInt64BitsToDouble(((ulong)hi << 32) | lo);

    /// <summary>
    /// exp(x) as numpy's float64 exp computes it on AVX-512 (Intel SVML <c>__svml_exp8</c>, main path):
    /// N = x·log2(e) rounded down to 1/16, r = x − N·ln2 (two-part), exp(r)−1 by a degree-6 polynomial,
    /// result = 2^⌊N⌋ · T[j]·(1 + p). Outside |x| &lt; 700 (SVML's special-case path) it falls back to Math.Exp.
    /// </summary>
    internal static double NumpyExp(double x)
    {
        if (!(Math.Abs(x) < 700)) return Math.Exp(x);
        // SVML adds 1.5·2^48 with round-toward-zero: an exact floor of x·log2(e) to a multiple of 1/16.
        double ph = x * Log2E;
        double pl = Math.FusedMultiplyAdd(x, Log2E, -ph); // exact error of the product
        double scaled = ph * 16;                            // exact (power of two)
        double k = Math.Floor(scaled);
        if (k == scaled && pl < 0) k -= 1;
        double n = k / 16;
        int j = (int)((long)k & 15);
        double r = Math.FusedMultiplyAdd(-n, Ln2Hi, x);
        r = Math.FusedMultiplyAdd(-Ln2Lo, n, r);
        double r2 = r * r;
        double p56 = Math.FusedMultiplyAdd(C6, r, C5);
        double p34 = Math.FusedMultiplyAdd(C4, r, C3);
        double r3 = r2 * r;
        double p12 = Math.FusedMultiplyAdd(r2, C2, r);
        double p36 = Math.FusedMultiplyAdd(r2, p56, p34);
        double p = Math.FusedMultiplyAdd(r3, p36, p12);
        double res = Math.FusedMultiplyAdd(Th[j], p, Th[j]);
        return Math.ScaleB(res, (int)Math.Floor(n));
    }
}
