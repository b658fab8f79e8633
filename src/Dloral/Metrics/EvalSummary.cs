using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Dloral.Metrics;

/// <summary>One row of an <see cref="EvalSummary"/>: a method's clip-level metrics averaged over the reports that have it.</summary>
public sealed record EvalSummaryRow(string Name, int Clips, IReadOnlyDictionary<string, double> Mean, IReadOnlyDictionary<string, double> PerClipPsnrY);

/// <summary>
/// Averages several <c>dloral eval</c> reports (one per clip; rows matched by name, e.g. "bicubic", "compact") into one
/// table: the mean of every clip-level metric over clips, and each row's PSNR-Y gain over the "bicubic" row on the same
/// clips. This is how a model is judged on a set of clips rather than one.
/// </summary>
public static class EvalSummary
{
    /// <summary>Reads the reports (report.json files or folders holding one) and averages them.</summary>
    /// <exception cref="InvalidDataException">A report is missing, not JSON, or not a dloral eval report.</exception>
    public static IReadOnlyList<EvalSummaryRow> Summarize(IEnumerable<string> reports)
    {
        ArgumentNullException.ThrowIfNull(reports);
        var sums = new Dictionary<string, Dictionary<string, (double Sum, int N)>>(StringComparer.Ordinal);
        var perClip = new Dictionary<string, Dictionary<string, double>>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var given in reports)
        {
            var path = Directory.Exists(given) ? Path.Combine(given, "report.json") : given;
            if (!File.Exists(path)) throw new InvalidDataException($"{path}: report not found");
            JsonNode? root;
            try { root = JsonNode.Parse(File.ReadAllText(path)); }
            catch (JsonException e) { throw new InvalidDataException($"{path}: not JSON: {e.Message}", e); }
            if (root?["tool"]?.GetValue<string>() != "dloral eval" || root["rows"] is not JsonArray rows)
                throw new InvalidDataException($"{path}: not a 'dloral eval' report (no tool/rows)");
            string clip = root["ground_truth"]?.GetValue<string>() is { } gt ? Path.GetFileName(gt) : path;
            foreach (var row in rows)
            {
                var name = row?["name"]?.GetValue<string>() ?? throw new InvalidDataException($"{path}: a row has no name");
                if (!sums.TryGetValue(name, out var metrics)) { sums[name] = metrics = new(StringComparer.Ordinal); perClip[name] = new(StringComparer.Ordinal); order.Add(name); }
                if (row["clip"] is not JsonObject values) continue;
                foreach (var (key, value) in values)
                {
                    if (value is not JsonValue v || !v.TryGetValue<double>(out var x) || !double.IsFinite(x)) continue;
                    var (s, n) = metrics.GetValueOrDefault(key);
                    metrics[key] = (s + x, n + 1);
                    if (key == "psnr_y") perClip[name][clip] = x;
                }
            }
        }
        if (order.Count == 0) throw new InvalidDataException("no report rows to summarise");
        return order.Select(name => new EvalSummaryRow(name, perClip[name].Count,
            sums[name].ToDictionary(kv => kv.Key, kv => kv.Value.Sum / kv.Value.N, StringComparer.Ordinal), perClip[name])).ToList();
    }

    /// <summary>The mean PSNR-Y gain of <paramref name="row"/> over <paramref name="reference"/> on the clips both have (NaN if none).</summary>
    public static double PsnrYGain(EvalSummaryRow row, EvalSummaryRow reference)
    {
        ArgumentNullException.ThrowIfNull(row);
        ArgumentNullException.ThrowIfNull(reference);
        var common = row.PerClipPsnrY.Keys.Where(reference.PerClipPsnrY.ContainsKey).ToList();
        return common.Count == 0 ? double.NaN : common.Average(c => row.PerClipPsnrY[c] - reference.PerClipPsnrY[c]);
    }

    private static readonly string[] Columns = ["psnr_y", "ssim_y", "psnr_rgb", "resnet18_feature_distance", "lpips", "warping_error", "tof"];

    /// <summary>A Markdown table: one line per row, the mean of each metric present, and the PSNR-Y gain over "bicubic".</summary>
    public static string ToMarkdown(IReadOnlyList<EvalSummaryRow> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var columns = Columns.Where(c => rows.Any(r => r.Mean.ContainsKey(c))).ToList();
        var bicubic = rows.FirstOrDefault(r => r.Name == "bicubic");
        var sb = new StringBuilder();
        sb.Append("| method | clips | ").AppendJoin(" | ", columns).Append(bicubic is null ? "" : " | Δ psnr_y vs bicubic").AppendLine(" |");
        sb.Append("|---|---:|").Append(string.Concat(columns.Select(_ => "---:|"))).AppendLine(bicubic is null ? "" : "---:|");
        foreach (var r in rows)
        {
            sb.Append(CultureInfo.InvariantCulture, $"| {r.Name} | {r.Clips} | ");
            sb.AppendJoin(" | ", columns.Select(c => r.Mean.TryGetValue(c, out var v) ? v.ToString(c.StartsWith("psnr", StringComparison.Ordinal) ? "F2" : "F4", CultureInfo.InvariantCulture) : "—"));
            if (bicubic is not null) sb.Append(CultureInfo.InvariantCulture, $" | {PsnrYGain(r, bicubic):+0.00;-0.00;0.00}");
            sb.AppendLine(" |");
        }
        return sb.ToString();
    }

    /// <summary>The summary as JSON (rows with their means, per-clip PSNR-Y and gain over bicubic).</summary>
    public static string ToJson(IReadOnlyList<EvalSummaryRow> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var bicubic = rows.FirstOrDefault(r => r.Name == "bicubic");
        var arr = new JsonArray();
        foreach (var r in rows)
        {
            var o = new JsonObject { ["name"] = r.Name, ["clips"] = r.Clips };
            var mean = new JsonObject();
            foreach (var (k, v) in r.Mean) mean[k] = Math.Round(v, 6);
            o["mean"] = mean;
            var clips = new JsonObject();
            foreach (var (k, v) in r.PerClipPsnrY) clips[k] = Math.Round(v, 6);
            o["psnr_y_per_clip"] = clips;
            if (bicubic is not null && double.IsFinite(PsnrYGain(r, bicubic))) o["psnr_y_gain_over_bicubic"] = Math.Round(PsnrYGain(r, bicubic), 6);
            arr.Add(o);
        }
        return new JsonObject { ["tool"] = "dloral eval-summary", ["rows"] = arr }.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}
