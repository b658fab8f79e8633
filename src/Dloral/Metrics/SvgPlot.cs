using System.Globalization;
using System.Net;
using System.Text;

namespace Dloral.Metrics;

/// <summary>A per-frame line plot as standalone SVG text (no dependency): one line per sequence, axes, ticks, legend.</summary>
public static class SvgPlot
{
    private static readonly string[] Palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

    /// <summary>Renders the series; non-finite values leave gaps.</summary>
    public static string Render(string title, string yLabel, IReadOnlyList<(string Name, IReadOnlyList<double?> Values)> series)
    {
        const int width = 760, height = 340, left = 70, right = 180, top = 36, bottom = 46;
        int plotW = width - left - right, plotH = height - top - bottom;
        var finite = series.SelectMany(s => s.Values).Where(v => v is double d && double.IsFinite(d)).Select(v => v!.Value).ToList();
        int n = series.Count == 0 ? 0 : series.Max(s => s.Values.Count);
        double yMin = finite.Count > 0 ? finite.Min() : 0, yMax = finite.Count > 0 ? finite.Max() : 1;
        if (yMax - yMin < 1e-12) { yMin -= 0.5 * Math.Max(Math.Abs(yMin), 1e-3); yMax += 0.5 * Math.Max(Math.Abs(yMax), 1e-3); }
        double pad = (yMax - yMin) * 0.05;
        yMin -= pad; yMax += pad;
        double xMax = Math.Max(1, n - 1);
        string X(double i) => F(left + i / xMax * plotW);
        string Y(double v) => F(top + (1 - (v - yMin) / (yMax - yMin)) * plotH);

        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">");
        sb.AppendLine(CultureInfo.InvariantCulture, $"<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>");
        sb.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{width / 2}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">{Esc(title)}</text>");
        sb.AppendLine(CultureInfo.InvariantCulture, $"<rect x=\"{left}\" y=\"{top}\" width=\"{plotW}\" height=\"{plotH}\" fill=\"none\" stroke=\"#444\"/>");
        for (int k = 0; k <= 4; k++)
        {
            double v = yMin + (yMax - yMin) * k / 4;
            sb.AppendLine(CultureInfo.InvariantCulture, $"<line x1=\"{left}\" x2=\"{left + plotW}\" y1=\"{Y(v)}\" y2=\"{Y(v)}\" stroke=\"#ddd\"/>");
            sb.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{left - 6}\" y=\"{Y(v)}\" text-anchor=\"end\" dominant-baseline=\"middle\">{Esc(Tick(v))}</text>");
        }
        int xTicks = Math.Min(n - 1, 6);
        for (int k = 0; k <= xTicks && xTicks > 0; k++)
        {
            int i = (int)Math.Round(xMax * k / xTicks);
            sb.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{X(i)}\" y=\"{top + plotH + 16}\" text-anchor=\"middle\">{i}</text>");
        }
        sb.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{left + plotW / 2}\" y=\"{height - 8}\" text-anchor=\"middle\">frame</text>");
        sb.AppendLine(CultureInfo.InvariantCulture, $"<text transform=\"translate(16,{top + plotH / 2}) rotate(-90)\" text-anchor=\"middle\">{Esc(yLabel)}</text>");
        for (int s = 0; s < series.Count; s++)
        {
            string color = Palette[s % Palette.Length];
            var segment = new List<string>();
            void Flush()
            {
                if (segment.Count > 1) sb.AppendLine(CultureInfo.InvariantCulture, $"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.8\" points=\"{string.Join(' ', segment)}\"/>");
                else if (segment.Count == 1)
                {
                    var xy = segment[0].Split(',');
                    sb.AppendLine(CultureInfo.InvariantCulture, $"<circle cx=\"{xy[0]}\" cy=\"{xy[1]}\" r=\"2.5\" fill=\"{color}\"/>");
                }
                segment.Clear();
            }
            var values = series[s].Values;
            for (int i = 0; i < values.Count; i++)
            {
                if (values[i] is double v && double.IsFinite(v)) segment.Add($"{X(i)},{Y(v)}");
                else Flush();
            }
            Flush();
            int ly = top + 10 + s * 18;
            sb.AppendLine(CultureInfo.InvariantCulture, $"<line x1=\"{left + plotW + 12}\" x2=\"{left + plotW + 32}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2.5\"/>");
            sb.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{left + plotW + 38}\" y=\"{ly}\" dominant-baseline=\"middle\">{Esc(Shorten(series[s].Name, 20))}</text>");
        }
        sb.AppendLine("</svg>");
        return sb.ToString();
    }

    private static string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);

    private static string Tick(double v) => Math.Abs(v) >= 100 ? v.ToString("0", CultureInfo.InvariantCulture)
        : Math.Abs(v) >= 1 ? v.ToString("0.##", CultureInfo.InvariantCulture) : v.ToString("0.####", CultureInfo.InvariantCulture);

    private static string Shorten(string s, int max) => s.Length <= max ? s : s[..(max - 1)] + "…";

    private static string Esc(string s) => WebUtility.HtmlEncode(s);
}
