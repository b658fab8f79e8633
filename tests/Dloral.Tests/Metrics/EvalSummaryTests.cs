using System.Text.Json.Nodes;
using Dloral.Metrics;
using Dloral.Tests.Cli;

namespace Dloral.Tests.Metrics;

/// <summary><c>dloral eval-summary</c>: per-clip eval reports averaged per method, PSNR-Y gain over bicubic on common clips.</summary>
public sealed class EvalSummaryTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("dloral-evalsum-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string Report(string clip, params (string Name, double PsnrY, double Warp)[] rows)
    {
        var folder = Path.Combine(_dir, clip);
        Directory.CreateDirectory(folder);
        var arr = new JsonArray();
        foreach (var (name, psnr, warp) in rows)
            arr.Add(new JsonObject { ["name"] = name, ["clip"] = new JsonObject { ["psnr_y"] = psnr, ["warping_error"] = warp, ["identical"] = false } });
        var root = new JsonObject { ["tool"] = "dloral eval", ["ground_truth"] = $"/clips/{clip}.gt.mkv", ["rows"] = arr };
        File.WriteAllText(Path.Combine(folder, "report.json"), root.ToJsonString());
        return folder;
    }

    [Fact]
    public void Means_per_method_and_the_gain_over_bicubic_on_the_same_clips()
    {
        var a = Report("a", ("bicubic", 30, 4), ("compact.mkv", 31.5, 3));
        var b = Report("b", ("bicubic", 26, 6), ("compact.mkv", 26.5, 5), ("other.mkv", 27, 9));
        var rows = EvalSummary.Summarize([a, Path.Combine(b, "report.json")]);
        Assert.Equal(["bicubic", "compact.mkv", "other.mkv"], rows.Select(r => r.Name));
        var bicubic = rows[0];
        Assert.Equal(2, rows[1].Clips);
        Assert.Equal(29.0, rows[1].Mean["psnr_y"], 9);
        Assert.Equal(4.0, rows[1].Mean["warping_error"], 9);
        Assert.Equal(1.0, EvalSummary.PsnrYGain(rows[1], bicubic), 9);
        Assert.Equal(1.0, EvalSummary.PsnrYGain(rows[2], bicubic), 9); // only clip b is common
        Assert.False(rows[0].Mean.ContainsKey("identical"));
        var md = EvalSummary.ToMarkdown(rows);
        Assert.Contains("| compact.mkv | 2 | 29.00 | 4.0000 | +1.00 |", md);
        var json = JsonNode.Parse(EvalSummary.ToJson(rows))!;
        Assert.Equal(1.0, json["rows"]![1]!["psnr_y_gain_over_bicubic"]!.GetValue<double>(), 9);
    }

    [Fact]
    public void The_command_writes_markdown_and_json_and_rejects_bad_reports()
    {
        var a = Report("a", ("bicubic", 30, 4), ("compact.mkv", 31, 3));
        var output = Path.Combine(_dir, "summary.md");
        var r = CliRunner.Run("eval-summary", a, "-o", output);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("+1.00", File.ReadAllText(output));
        Assert.True(File.Exists(Path.Combine(_dir, "summary.json")));
        Assert.Equal(2, CliRunner.Run("eval-summary", a, "-o", output).ExitCode); // exists, no --overwrite
        Assert.Equal(0, CliRunner.Run("eval-summary", a, "-o", output, "-y").ExitCode);

        var bad = Path.Combine(_dir, "bad.json");
        File.WriteAllText(bad, "{ \"tool\": \"something else\" }");
        var e = CliRunner.Run("eval-summary", bad);
        Assert.Equal(2, e.ExitCode);
        Assert.Contains("bad.json", e.Stderr);
        Assert.Equal(2, CliRunner.Run("eval-summary", Path.Combine(_dir, "missing")).ExitCode);
    }
}
