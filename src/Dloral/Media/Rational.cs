using System.Globalization;

namespace Dloral.Media;

/// <summary>
/// An exact rational number (frame rates, time bases): 30000/1001 stays 30000/1001 instead of 29.97.
/// Always stored reduced with a positive denominator, so record equality is value equality.
/// </summary>
public readonly record struct Rational
{
    public long Numerator { get; }
    public long Denominator { get; }

    public Rational(long numerator, long denominator)
    {
        if (denominator == 0) throw new ArgumentException("denominator is zero", nameof(denominator));
        if (denominator < 0) { numerator = -numerator; denominator = -denominator; }
        long g = Gcd(Math.Abs(numerator), denominator);
        if (g > 1) { numerator /= g; denominator /= g; }
        Numerator = numerator;
        Denominator = denominator;
    }

    public static Rational FromInt(long value) => new(value, 1);

    public bool IsZero => Numerator == 0;

    public double ToDouble() => (double)Numerator / Denominator;

    /// <summary>The reciprocal (a frame rate's frame duration).</summary>
    public Rational Inverse() => new(Denominator, Numerator);

    /// <summary>Parses ffprobe's "30000/1001", "25", "0/0" (→ null) or a decimal "29.97" (→ exact decimal fraction).</summary>
    public static Rational? TryParse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        text = text.Trim();
        int slash = text.IndexOfAny(['/', ':']);
        if (slash >= 0)
        {
            if (!long.TryParse(text.AsSpan(0, slash), NumberStyles.Integer, CultureInfo.InvariantCulture, out long n)) return null;
            if (!long.TryParse(text.AsSpan(slash + 1), NumberStyles.Integer, CultureInfo.InvariantCulture, out long d)) return null;
            return d == 0 || n == 0 ? null : new Rational(n, d);
        }
        if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long whole))
            return whole == 0 ? null : new Rational(whole, 1);
        if (decimal.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out decimal dec) && dec != 0)
        {
            long den = 1;
            while (dec != decimal.Truncate(dec) && den < 1_000_000_000) { dec *= 10; den *= 10; }
            return new Rational((long)decimal.Truncate(dec), den);
        }
        return null;
    }

    public static Rational Parse(string text) =>
        TryParse(text) ?? throw new FormatException($"not a rational number: '{text}'");

    /// <summary>"30000/1001", or "25" when the denominator is 1 (both forms ffmpeg accepts).</summary>
    public override string ToString() =>
        Denominator == 1
            ? Numerator.ToString(CultureInfo.InvariantCulture)
            : string.Create(CultureInfo.InvariantCulture, $"{Numerator}/{Denominator}");

    /// <summary>Always "num/den" (for ffmpeg options that want the fraction form).</summary>
    public string ToFractionString() => string.Create(CultureInfo.InvariantCulture, $"{Numerator}/{Denominator}");

    private static long Gcd(long a, long b)
    {
        while (b != 0) (a, b) = (b, a % b);
        return a == 0 ? 1 : a;
    }
}
