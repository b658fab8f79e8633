namespace Dloral.Pipeline;

/// <summary>A 1-D interpolation kernel: its value at a distance and its half-width (support).</summary>
public sealed class ResampleKernel
{
    private readonly Func<double, double> _value;

    private ResampleKernel(string name, double support, Func<double, double> value)
    {
        Name = name;
        Support = support;
        _value = value;
    }

    public string Name { get; }

    /// <summary>Half-width in input pixels at scale 1 (the kernel is zero beyond it).</summary>
    public double Support { get; }

    public double this[double x] => _value(x);

    /// <summary>Lanczos windowed sinc with <paramref name="a"/> lobes: sinc(x)·sinc(x/a) for |x| &lt; a.</summary>
    public static ResampleKernel Lanczos(int a = 3) =>
        new($"lanczos{a}", a, x => Math.Abs(x) < a ? Sinc(x) * Sinc(x / a) : 0.0);

    /// <summary>
    /// Keys cubic convolution with parameter <paramref name="a"/>. PyTorch uses a = -0.75, Pillow
    /// a = -0.5; ffmpeg's swscale uses a B/C family (default B=0, C=0.6, i.e. a = -0.6).
    /// </summary>
    public static ResampleKernel Cubic(double a) => new($"cubic(a={a})", 2, x =>
    {
        x = Math.Abs(x);
        if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
        return 0;
    });

    private static double Sinc(double x)
    {
        if (x == 0) return 1;
        double px = Math.PI * x;
        return Math.Sin(px) / px;
    }
}
