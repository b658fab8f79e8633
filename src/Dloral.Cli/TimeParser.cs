using System.Globalization;

namespace Dloral.Cli;

/// <summary>Parses times like ffmpeg does: "12.5" (seconds), "1:02.5" (mm:ss), "0:01:02.5" (hh:mm:ss).</summary>
public static class TimeParser
{
    public static TimeSpan Parse(string text, string optionName)
    {
        var parts = text.Trim().Split(':');
        if (parts.Length is >= 1 and <= 3)
        {
            double total = 0;
            bool ok = true;
            for (int i = 0; i < parts.Length && ok; i++)
            {
                ok = double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v >= 0 && double.IsFinite(v)
                     && (i == 0 || v < 60 || parts.Length == 1);
                total = total * 60 + v;
            }
            if (ok) return TimeSpan.FromSeconds(total);
        }
        throw new UsageException($"{optionName}: '{text}' is not a time (use seconds like 12.5, or mm:ss, or hh:mm:ss.ms)");
    }
}
