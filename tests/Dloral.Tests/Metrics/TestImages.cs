using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Tests.Metrics;

/// <summary>Deterministic synthetic images for the metric tests.</summary>
internal static class TestImages
{
    private static readonly (double Fx, double Fy, double Phase, double Amp, int Channel)[] Waves = BuildWaves();

    private static (double, double, double, double, int)[] BuildWaves()
    {
        var rng = new Random(1234);
        var waves = new (double, double, double, double, int)[24];
        for (int i = 0; i < waves.Length; i++)
        {
            // Periods between ~6 and ~40 px: texture at every scale of the flow pyramid.
            double f = 2 * Math.PI / (6 + rng.NextDouble() * 34);
            double angle = rng.NextDouble() * Math.PI;
            waves[i] = (f * Math.Cos(angle), f * Math.Sin(angle), rng.NextDouble() * 2 * Math.PI, 0.04 + 0.04 * rng.NextDouble(), i % 3);
        }
        return waves;
    }

    /// <summary>A smooth band-limited RGB texture in [0,1], sampled at (x + dx, y + dy): exact sub-pixel shifts.</summary>
    public static Tensor Texture(int height, int width, double dx = 0, double dy = 0)
    {
        var data = new float[3 * height * width];
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                {
                    double v = 0.5;
                    foreach (var w in Waves)
                    {
                        double amp = w.Channel == c ? w.Amp : w.Amp * 0.5;
                        v += amp * Math.Sin(w.Fx * (x + dx) + w.Fy * (y + dy) + w.Phase);
                    }
                    data[(c * height + y) * width + x] = (float)Math.Clamp(v, 0, 1);
                }
        return tensor(data, [3, height, width]);
    }

    /// <summary>Uniform random image in [0,1] from a fixed seed.</summary>
    public static Tensor Random(int height, int width, long seed)
    {
        using var g = new Generator((ulong)seed);
        return rand([3, height, width], generator: g);
    }
}
