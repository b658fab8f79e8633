using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Pipeline;

/// <summary>
/// The reference's tile blending weights (<c>Generator_eval._gaussian_weights</c>), in float64.
/// </summary>
/// <remarks>
/// Reproduced as is, including its asymmetry: x is centred at (w−1)/2 but y at h/2, so a tile's weights
/// are not symmetric top to bottom. var = 0.01; value = exp(−(i−mid)²/n²/(2·var)) / √(2π·var).
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
            p[i] = Math.Exp(-d * d / (n * n) / (2 * Var)) / norm;
        }
        return p;
    }
}
