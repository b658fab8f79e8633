namespace Dloral.Training.Degradations;

/// <summary>Kernel families of Real-ESRGAN (basicsr <c>degradations.py</c>).</summary>
public enum BlurKernelType
{
    Iso,
    Aniso,
    GeneralizedIso,
    GeneralizedAniso,
    PlateauIso,
    PlateauAniso,
    /// <summary>Circular low-pass (2-D sinc) kernel: ringing / overshoot artifacts.</summary>
    Sinc,
    /// <summary>The identity (a 1×1 pulse): "no final sinc filter".</summary>
    Pulse,
}

/// <summary>A normalised square blur kernel (odd size) and the parameters it was drawn with.</summary>
public sealed record BlurKernel(BlurKernelType Type, int Size, double[] Values, double SigmaX, double SigmaY, double Theta, double Beta, double Cutoff)
{
    public double Sum => Values.Sum();

    public static BlurKernel Pulse { get; } = new(BlurKernelType.Pulse, 1, [1.0], 0, 0, 0, 0, 0);
}

/// <summary>
/// Blur kernels of the Real-ESRGAN degradation: bivariate (an)isotropic Gaussian, generalized
/// Gaussian (exp(-½·d^β)), plateau (1/(d^β+1)) and the circular low-pass sinc kernel, with the
/// reference's sampling of σ, rotation, β and cutoff.
/// </summary>
public static class BlurKernels
{
    public static BlurKernelType ParseType(string name, string source = "<config>") => name switch
    {
        "iso" => BlurKernelType.Iso,
        "aniso" => BlurKernelType.Aniso,
        "generalized_iso" => BlurKernelType.GeneralizedIso,
        "generalized_aniso" => BlurKernelType.GeneralizedAniso,
        "plateau_iso" => BlurKernelType.PlateauIso,
        "plateau_aniso" => BlurKernelType.PlateauAniso,
        _ => throw new InvalidDataException($"Degradation config '{source}': unknown kernel type '{name}' (iso, aniso, generalized_iso, generalized_aniso, plateau_iso, plateau_aniso)."),
    };

    /// <summary>
    /// A random kernel of one stage, as the reference's <c>random_kernels</c>: odd size uniform in the
    /// configured range, a sinc kernel with probability <paramref name="sincProb"/> (cutoff in
    /// [π/3, π] below size 13, [π/5, π] from 13), else a mixed Gaussian-family kernel.
    /// </summary>
    public static BlurKernel RandomStageKernel(DegradationRandom rng, int[] sizeRange, string[] kernelList, double[] kernelProb,
        double sincProb, double[] sigmaRange, double[] betagRange, double[] betapRange)
    {
        int size = RandomOddSize(rng, sizeRange);
        if (rng.Chance(sincProb))
        {
            double omega = size < 13 ? rng.Uniform(Math.PI / 3, Math.PI) : rng.Uniform(Math.PI / 5, Math.PI);
            return Sinc(omega, size);
        }
        var type = ParseType(kernelList[rng.Weighted(kernelProb)]);
        return RandomMixed(rng, type, size, sigmaRange, betagRange, betapRange);
    }

    /// <summary>The final sinc filter: cutoff in [π/3, π], or the identity with probability 1 − p.</summary>
    public static BlurKernel RandomFinalSinc(DegradationRandom rng, int[] sizeRange, double finalSincProb)
    {
        if (!rng.Chance(finalSincProb)) return BlurKernel.Pulse;
        int size = RandomOddSize(rng, sizeRange);
        return Sinc(rng.Uniform(Math.PI / 3, Math.PI), size);
    }

    public static int RandomOddSize(DegradationRandom rng, int[] sizeRange)
    {
        int lo = sizeRange[0] / 2, hi = sizeRange[1] / 2;
        return 2 * rng.Int(lo, hi) + 1;
    }

    /// <summary>One Gaussian-family kernel with parameters drawn like basicsr <c>random_mixed_kernels</c>.</summary>
    public static BlurKernel RandomMixed(DegradationRandom rng, BlurKernelType type, int size, double[] sigmaRange, double[] betagRange, double[] betapRange)
    {
        bool iso = type is BlurKernelType.Iso or BlurKernelType.GeneralizedIso or BlurKernelType.PlateauIso;
        double sx = rng.Uniform(sigmaRange);
        double sy = iso ? sx : rng.Uniform(sigmaRange);
        double theta = iso ? 0 : rng.Uniform(-Math.PI, Math.PI);
        double beta = type switch
        {
            BlurKernelType.GeneralizedIso or BlurKernelType.GeneralizedAniso => SplitBeta(rng, betagRange),
            BlurKernelType.PlateauIso or BlurKernelType.PlateauAniso => SplitBeta(rng, betapRange),
            _ => 1,
        };
        return Gaussian(type, size, sx, sy, theta, beta);
    }

    // Half of the draws below 1 and half above, as the reference does (β < 1 gives heavy tails).
    private static double SplitBeta(DegradationRandom rng, double[] range) =>
        rng.Chance(0.5) ? rng.Uniform(range[0], Math.Max(range[0], 1)) : rng.Uniform(Math.Min(1, range[1]), range[1]);

    /// <summary>A normalised Gaussian-family kernel with covariance R·diag(sx², sy²)·Rᵀ.</summary>
    public static BlurKernel Gaussian(BlurKernelType type, int size, double sx, double sy, double theta, double beta)
    {
        if (size % 2 == 0) throw new ArgumentException($"Kernel size must be odd, got {size}.", nameof(size));
        double c = Math.Cos(theta), s = Math.Sin(theta);
        // Σ = U D Uᵀ with U the rotation by θ; its inverse is U D⁻¹ Uᵀ.
        double ix = 1 / (sx * sx), iy = 1 / (sy * sy);
        double a = c * c * ix + s * s * iy, b = c * s * (ix - iy), d = s * s * ix + c * c * iy;
        int r = size / 2;
        var k = new double[size * size];
        double sum = 0;
        for (int yi = 0; yi < size; yi++)
        for (int xi = 0; xi < size; xi++)
        {
            double x = xi - r, y = yi - r;
            double q = a * x * x + 2 * b * x * y + d * y * y; // xᵀ Σ⁻¹ x
            double v = type switch
            {
                BlurKernelType.Iso or BlurKernelType.Aniso => Math.Exp(-0.5 * q),
                BlurKernelType.GeneralizedIso or BlurKernelType.GeneralizedAniso => Math.Exp(-0.5 * Math.Pow(q, beta)),
                BlurKernelType.PlateauIso or BlurKernelType.PlateauAniso => 1 / (Math.Pow(q, beta) + 1),
                _ => throw new ArgumentException($"{type} is not a Gaussian-family kernel.", nameof(type)),
            };
            k[yi * size + xi] = v;
            sum += v;
        }
        for (int i = 0; i < k.Length; i++) k[i] /= sum;
        return new BlurKernel(type, size, k, sx, sy, theta, beta, 0);
    }

    /// <summary>The circular low-pass kernel cutoff·J1(cutoff·r)/(2π·r), normalised (basicsr circular_lowpass_kernel).</summary>
    public static BlurKernel Sinc(double cutoff, int size)
    {
        if (size % 2 == 0) throw new ArgumentException($"Kernel size must be odd, got {size}.", nameof(size));
        double center = (size - 1) / 2.0;
        var k = new double[size * size];
        double sum = 0;
        for (int yi = 0; yi < size; yi++)
        for (int xi = 0; xi < size; xi++)
        {
            double rr = Math.Sqrt((xi - center) * (xi - center) + (yi - center) * (yi - center));
            double v = rr == 0 ? cutoff * cutoff / (4 * Math.PI) : cutoff * BesselJ1(cutoff * rr) / (2 * Math.PI * rr);
            k[yi * size + xi] = v;
            sum += v;
        }
        for (int i = 0; i < k.Length; i++) k[i] /= sum;
        return new BlurKernel(BlurKernelType.Sinc, size, k, 0, 0, 0, 0, cutoff);
    }

    /// <summary>Bessel function of the first kind, order 1 (rational approximations, |error| &lt; 1e-8).</summary>
    public static double BesselJ1(double x)
    {
        double ax = Math.Abs(x);
        if (ax < 8.0)
        {
            double y = x * x;
            double n = x * (72362614232.0 + y * (-7895059235.0 + y * (242396853.1 + y * (-2972611.439 + y * (15704.48260 + y * -30.16036606)))));
            double m = 144725228442.0 + y * (2300535178.0 + y * (18583304.74 + y * (99447.43394 + y * (376.9991397 + y))));
            return n / m;
        }
        double z = 8.0 / ax, y2 = z * z, xx = ax - 2.356194491;
        double p = 1.0 + y2 * (0.183105e-2 + y2 * (-0.3516396496e-4 + y2 * (0.2457520174e-5 + y2 * -0.240337019e-6)));
        double q = 0.04687499995 + y2 * (-0.2002690873e-3 + y2 * (0.8449199096e-5 + y2 * (-0.88228987e-6 + y2 * 0.105787412e-6)));
        double ans = Math.Sqrt(0.636619772 / ax) * (Math.Cos(xx) * p - z * Math.Sin(xx) * q);
        return x < 0 ? -ans : ans;
    }
}
