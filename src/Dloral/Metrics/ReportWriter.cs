using System.Globalization;
using System.Text;

namespace Dloral.Metrics;

/// <summary>
/// Writes an <see cref="EvalReport"/> into a folder: report.json (per frame and per clip), report.md (tables,
/// notes, pictures), plots/&lt;metric&gt;.svg (per-frame curves) and crops/frame_NNNNNN.png (side-by-side crops).
/// </summary>
public static class ReportWriter
{
    public const string JsonFile = "report.json";
    public const string MarkdownFile = "report.md";

    public static string CropFileName(CropSet c) => $"crops/frame_{c.FrameIndex:D6}.png";

    public static string PlotFileName(string key) => $"plots/{key}.svg";

    /// <summary>Writes every file; returns the paths written.</summary>
    public static IReadOnlyList<string> Write(EvalReport report, string directory)
    {
        Directory.CreateDirectory(directory);
        var written = new List<string>();
        var jsonPath = Path.Combine(directory, JsonFile);
        using (var stream = File.Create(jsonPath)) ReportJson.Write(report, stream);
        written.Add(jsonPath);

        var plotted = new List<string>();
        foreach (var key in MetricKeys.All)
        {
            if (!report.Rows.Any(r => r.Has(key))) continue;
            var series = report.Rows.Select(r => (r.Name, (IReadOnlyList<double?>)r.Frames
                .Select(f => f.TryGetValue(key, out var v) ? v : (double?)null).ToList())).ToList();
            var path = Path.Combine(directory, PlotFileName(key));
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, SvgPlot.Render($"{key} per frame", key, series));
            written.Add(path);
            plotted.Add(key);
        }
        foreach (var crop in report.Crops)
        {
            var path = Path.Combine(directory, CropFileName(crop));
            CropMontage.Write(crop, path);
            written.Add(path);
        }
        var mdPath = Path.Combine(directory, MarkdownFile);
        File.WriteAllText(mdPath, Markdown(report, plotted));
        written.Add(mdPath);
        return written;
    }

    /// <summary>The Markdown report text.</summary>
    public static string Markdown(EvalReport report, IReadOnlyList<string> plotted)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("# dloral eval report");
        sb.AppendLine();
        sb.AppendLine(c, $"- frames: {report.FrameCount}, size {report.Width}x{report.Height}, scale x{report.Scale} (border crop {report.CropBorder} px)");
        sb.AppendLine(c, $"- ground truth: {(report.GroundTruthPath is null ? "none (full-reference metrics and tOF not computed)" : $"`{report.GroundTruthPath}`")}");
        if (report.LowResPath is not null) sb.AppendLine(c, $"- low-resolution input: `{report.LowResPath}` (row \"bicubic\" = its bicubic x{report.Scale})");
        if (report.FlowEstimator is not null) sb.AppendLine(c, $"- optical flow for the temporal metrics: {report.FlowEstimator}, estimated on the {report.FlowSource}");
        if (report.FeatureModelPath is not null) sb.AppendLine(c, $"- {MetricKeys.FeatureDistance}: ImageNet ResNet-18 from `{Path.GetFileName(report.FeatureModelPath)}` (NuGet Microsoft.ML.DnnImageFeaturizer.ResNet18); this is not LPIPS");
        sb.AppendLine(c, $"- evaluated in {report.Seconds:0.0} s");
        sb.AppendLine();

        var fullRef = MetricKeys.All.Where(k => !MetricKeys.IsNoReference(k) && report.Rows.Any(r => r.Has(k))).ToList();
        var noRef = MetricKeys.All.Where(k => MetricKeys.IsNoReference(k) && report.Rows.Any(r => r.Has(k))).ToList();
        if (fullRef.Count > 0)
        {
            sb.AppendLine("## Quality and temporal metrics (clip means)");
            sb.AppendLine();
            Table(sb, report, fullRef);
        }
        if (noRef.Count > 0)
        {
            sb.AppendLine("## No-reference indicators (not quality scores)");
            sb.AppendLine();
            Table(sb, report, noRef);
        }
        var identical = report.Rows.Where(r => r.IdenticalFrames > 0).ToList();
        foreach (var r in identical)
            sb.AppendLine(c, $"Note: `{r.Name}` has {r.IdenticalFrames} frame(s) identical to the ground truth (PSNR +inf); PSNR means are over the other frames.").AppendLine();

        if (plotted.Count > 0)
        {
            sb.AppendLine("## Per-frame plots");
            sb.AppendLine();
            foreach (var key in plotted) sb.AppendLine(c, $"![{key}]({PlotFileName(key)})");
            sb.AppendLine();
        }
        if (report.Crops.Count > 0)
        {
            sb.AppendLine("## Side-by-side crops");
            sb.AppendLine();
            foreach (var crop in report.Crops)
            {
                sb.AppendLine(c, $"Frame {crop.FrameIndex}, region x={crop.X} y={crop.Y} {crop.Size}x{crop.Size} (most detailed area of the reference), left to right: {string.Join(" | ", crop.Tiles.Select(t => t.Label))}");
                sb.AppendLine();
                sb.AppendLine(c, $"![frame {crop.FrameIndex}]({CropFileName(crop)})");
                sb.AppendLine();
            }
        }
        sb.AppendLine("## Definitions");
        sb.AppendLine();
        foreach (var key in fullRef.Concat(noRef)) sb.AppendLine(c, $"- `{key}`: {MetricKeys.Definitions[key]}");
        return sb.ToString();
    }

    private static void Table(StringBuilder sb, EvalReport report, List<string> keys)
    {
        var c = CultureInfo.InvariantCulture;
        sb.AppendLine("| sequence | " + string.Join(" | ", keys.Select(k => k + (MetricKeys.HigherIsBetter(k) ? " ↑" : MetricKeys.IsNoReference(k) ? "" : " ↓"))) + " |");
        sb.AppendLine("| --- | " + string.Join(" | ", keys.Select(_ => "---:")) + " |");
        foreach (var row in report.Rows)
        {
            var cells = keys.Select(k =>
            {
                if (!row.Has(k)) return "–";
                var v = row.Clip(k);
                if (v is null) return k is MetricKeys.PsnrY or MetricKeys.PsnrRgb && row.IdenticalFrames > 0 ? "∞ (identical)" : "–";
                return Format(k, v.Value);
            });
            sb.AppendLine(c, $"| {row.Name} | {string.Join(" | ", cells)} |");
        }
        sb.AppendLine();
    }

    private static string Format(string key, double v) => key switch
    {
        MetricKeys.PsnrY or MetricKeys.PsnrRgb => v.ToString("0.00", CultureInfo.InvariantCulture),
        MetricKeys.SsimY or MetricKeys.SsimRgb or MetricKeys.FeatureDistance => v.ToString("0.0000", CultureInfo.InvariantCulture),
        _ => v.ToString("0.000", CultureInfo.InvariantCulture),
    };
}
