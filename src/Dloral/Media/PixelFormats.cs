using System.Text.Json;

namespace Dloral.Media;

/// <summary>Bit depth, alpha and grayness of ffmpeg pixel formats, from <c>ffprobe -show_pixel_formats</c> (asked once per process).</summary>
internal static class PixelFormats
{
    public readonly record struct Description(int BitDepth, bool HasAlpha, bool IsGray);

    private static readonly Lazy<Dictionary<string, Description>> Table = new(Load);

    public static Description Describe(string pixelFormat)
    {
        if (Table.Value.TryGetValue(pixelFormat, out var d)) return d;
        // Unknown to this ffprobe (should not happen): guess from the name.
        int depth = pixelFormat.Contains("16", StringComparison.Ordinal) ? 16
            : pixelFormat.Contains("12", StringComparison.Ordinal) ? 12
            : pixelFormat.Contains("10", StringComparison.Ordinal) ? 10 : 8;
        return new Description(depth, pixelFormat.Contains('a', StringComparison.Ordinal) && pixelFormat.StartsWith("yuva", StringComparison.Ordinal),
            pixelFormat.StartsWith("gray", StringComparison.Ordinal));
    }

    private static Dictionary<string, Description> Load()
    {
        var (code, stdout, stderr) = FfmpegTools.Run(FfmpegTools.Ffprobe, ["-v", "error", "-show_pixel_formats", "-of", "json"], CancellationToken.None);
        if (code != 0) throw new MediaException(FfmpegTools.Ffprobe, $"cannot list pixel formats ({FfmpegTools.Cause(stderr)})");
        var table = new Dictionary<string, Description>(StringComparer.Ordinal);
        using var doc = JsonDocument.Parse(stdout);
        foreach (var f in doc.RootElement.GetProperty("pixel_formats").EnumerateArray())
        {
            string name = f.GetProperty("name").GetString() ?? "";
            int components = f.TryGetProperty("nb_components", out var nc) ? nc.GetInt32() : 3;
            int depth = 8;
            if (f.TryGetProperty("components", out var comps))
                depth = comps.EnumerateArray().Select(c => c.TryGetProperty("bit_depth", out var b) ? b.GetInt32() : 8).DefaultIfEmpty(8).Max();
            bool palette = false, alpha = false;
            if (f.TryGetProperty("flags", out var flags))
            {
                palette = flags.TryGetProperty("palette", out var p) && p.GetInt32() != 0;
                alpha = flags.TryGetProperty("alpha", out var a) && a.GetInt32() != 0;
            }
            // pal8 claims alpha because a palette may hold it; treat palettes as plain RGB.
            table[name] = new Description(Math.Max(depth, 1), alpha && !palette, !palette && components <= 2);
        }
        return table;
    }
}
