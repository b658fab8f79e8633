using System.Text.Json;

namespace Dloral.Metrics;

/// <summary>
/// Writes an <see cref="EvalReport"/> as JSON with plain keys. Non-finite numbers are not valid JSON: an
/// infinite PSNR (identical frames) is written as null next to <c>"identical": true</c>; a metric that could not
/// be computed for a frame (e.g. the warping error of frame 0) is null.
/// </summary>
public static class ReportJson
{
    public static void Write(EvalReport report, Stream stream)
    {
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("tool", "dloral eval");
        w.WriteNumber("format_version", 1);
        w.WriteNumber("scale", report.Scale);
        w.WriteNumber("crop_border", report.CropBorder);
        WriteStringOrNull(w, "ground_truth", report.GroundTruthPath);
        WriteStringOrNull(w, "low_res_input", report.LowResPath);
        w.WriteNumber("frames", report.FrameCount);
        w.WriteNumber("width", report.Width);
        w.WriteNumber("height", report.Height);
        WriteStringOrNull(w, "flow_estimator", report.FlowEstimator);
        WriteStringOrNull(w, "flow_source", report.FlowSource);
        WriteStringOrNull(w, "feature_model", report.FeatureModelPath);
        w.WriteNumber("seconds", Math.Round(report.Seconds, 3));
        w.WriteStartObject("definitions");
        foreach (var key in MetricKeys.All) w.WriteString(key, MetricKeys.Definitions[key]);
        w.WriteEndObject();
        w.WriteStartArray("rows");
        foreach (var row in report.Rows)
        {
            var keys = MetricKeys.All.Where(row.Has).ToList();
            w.WriteStartObject();
            w.WriteString("name", row.Name);
            w.WriteString("path", row.Path);
            w.WriteString("kind", row.Kind);
            w.WriteStartObject("clip");
            foreach (var key in keys) WriteNumberOrNull(w, key, row.Clip(key));
            if (row.Has(MetricKeys.PsnrRgb))
            {
                w.WriteNumber("identical_frames", row.IdenticalFrames);
                w.WriteBoolean("identical", row.IdenticalFrames == row.Frames.Count);
            }
            w.WriteEndObject();
            w.WriteStartArray("per_frame");
            for (int i = 0; i < row.Frames.Count; i++)
            {
                var f = row.Frames[i];
                w.WriteStartObject();
                w.WriteNumber("index", i);
                foreach (var key in keys) WriteNumberOrNull(w, key, f.TryGetValue(key, out var v) ? v : null);
                if (f.TryGetValue(MetricKeys.PsnrRgb, out var p)) w.WriteBoolean("identical", double.IsPositiveInfinity(p));
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("crops");
        foreach (var c in report.Crops)
        {
            w.WriteStartObject();
            w.WriteNumber("frame", c.FrameIndex);
            w.WriteNumber("x", c.X);
            w.WriteNumber("y", c.Y);
            w.WriteNumber("size", c.Size);
            w.WriteString("file", ReportWriter.CropFileName(c));
            w.WriteStartArray("columns");
            foreach (var (label, _) in c.Tiles) w.WriteStringValue(label);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteNumberOrNull(Utf8JsonWriter w, string key, double? value)
    {
        if (value is double v && double.IsFinite(v)) w.WriteNumber(key, Math.Round(v, 6));
        else w.WriteNull(key);
    }

    private static void WriteStringOrNull(Utf8JsonWriter w, string key, string? value)
    {
        if (value is null) w.WriteNull(key);
        else w.WriteString(key, value);
    }
}
