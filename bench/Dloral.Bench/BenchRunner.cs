using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Dloral.Bench;

/// <summary>Accumulates wall time per named stage during one measured run.</summary>
public sealed class StageTimer
{
    private readonly Dictionary<string, TimeSpan> _totals = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];

    /// <summary>Times the block <c>using (timer.Stage("decode")) { ... }</c>.</summary>
    public IDisposable Stage(string name) => new Scope(this, name, Stopwatch.GetTimestamp());

    /// <summary>Runs <paramref name="body"/> under <paramref name="name"/> and returns its value.</summary>
    public T Time<T>(string name, Func<T> body)
    {
        using (Stage(name)) return body();
    }

    public void Add(string name, TimeSpan elapsed)
    {
        if (!_totals.ContainsKey(name)) { _totals[name] = TimeSpan.Zero; _order.Add(name); }
        _totals[name] += elapsed;
    }

    internal IReadOnlyList<(string Name, TimeSpan Total)> Totals => _order.Select(n => (n, _totals[n])).ToList();

    private sealed class Scope(StageTimer owner, string name, long start) : IDisposable
    {
        public void Dispose() => owner.Add(name, Stopwatch.GetElapsedTime(start));
    }
}

/// <summary>One benchmarked model/configuration: medians over the measured runs.</summary>
public sealed record BenchRow(
    string Model,
    long FramesPerRun,
    int Runs,
    double MedianSeconds,
    double MinSeconds,
    double MaxSeconds,
    double FramesPerSecond,
    IReadOnlyList<(string Stage, double SecondsPerFrame)> Stages,
    long PeakRssBytes,
    string? Notes);

/// <summary>
/// The shared benchmark harness: for each model, warm-up runs (not measured), then several measured runs; reports
/// the median wall time, frames per second, the median seconds per frame of every stage the body timed, and the
/// peak resident memory (VmHWM from /proc/self/status, reset before each model through /proc/self/clear_refs).
/// The first row is the reference (bicubic): every row gets its speed ratio to it. Results are written to
/// bench/results/NAME.json and NAME.md.
/// </summary>
public sealed class BenchRunner
{
    private readonly string _name;
    private readonly string _title;

    public BenchRunner(string name, string title, int warmupRuns = 1, int measuredRuns = 3)
    {
        if (measuredRuns < 1) throw new ArgumentOutOfRangeException(nameof(measuredRuns), "at least one measured run");
        _name = name;
        _title = title;
        WarmupRuns = Math.Max(0, warmupRuns);
        MeasuredRuns = measuredRuns;
        // Other processes on a small shared machine distort timings: record how busy it was.
        Settings["cpu"] = CpuFeatures.Current.Describe();
        if (File.Exists("/proc/loadavg"))
            Settings["load average (1/5/15 min) at start"] = string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
    }

    public int WarmupRuns { get; }
    public int MeasuredRuns { get; }
    public List<BenchRow> Rows { get; } = [];

    /// <summary>Setting lines written above the table (input, sizes, threads...).</summary>
    public Dictionary<string, string> Settings { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Measures <paramref name="run"/>, which must process <paramref name="framesPerRun"/> frames per call and time
    /// its stages with the given <see cref="StageTimer"/>. Returns the row (also added to <see cref="Rows"/>).
    /// </summary>
    public BenchRow Measure(string model, long framesPerRun, Action<StageTimer> run, string? notes = null)
    {
        if (framesPerRun < 1) throw new ArgumentOutOfRangeException(nameof(framesPerRun));
        for (int i = 0; i < WarmupRuns; i++) run(new StageTimer());
        GC.Collect();
        GC.WaitForPendingFinalizers();
        ResetPeakRss();
        var seconds = new List<double>();
        var timers = new List<StageTimer>();
        for (int i = 0; i < MeasuredRuns; i++)
        {
            var timer = new StageTimer();
            long start = Stopwatch.GetTimestamp();
            run(timer);
            seconds.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
            timers.Add(timer);
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {model}: run {i + 1}/{MeasuredRuns} {seconds[^1]:F3} s"));
        }
        var stageNames = timers.SelectMany(t => t.Totals.Select(s => s.Name)).Distinct().ToList();
        var stages = stageNames.Select(n => (n, Median(timers.Select(t => t.Totals.FirstOrDefault(s => s.Name == n).Total.TotalSeconds)) / framesPerRun)).ToList();
        double median = Median(seconds);
        var row = new BenchRow(model, framesPerRun, MeasuredRuns, median, seconds.Min(), seconds.Max(), framesPerRun / median, stages, PeakRssBytes(), notes);
        Rows.Add(row);
        return row;
    }

    /// <summary>Writes bench/results/NAME.json and NAME.md and prints the Markdown.</summary>
    public void Write(string? resultsDir = null)
    {
        var dir = resultsDir ?? BenchUtil.ResultsDir;
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, _name + ".json"), ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        var md = ToMarkdown();
        File.WriteAllText(Path.Combine(dir, _name + ".md"), md);
        Console.WriteLine(md);
        Console.WriteLine($"results: {Path.Combine(dir, _name)}.{{json,md}}");
    }

    public JsonObject ToJson()
    {
        var reference = Rows.FirstOrDefault();
        var rows = new JsonArray();
        foreach (var r in Rows)
        {
            var stages = new JsonObject();
            foreach (var (stage, spf) in r.Stages) stages[stage] = Round(spf);
            rows.Add(new JsonObject
            {
                ["model"] = r.Model,
                ["frames_per_run"] = r.FramesPerRun,
                ["runs"] = r.Runs,
                ["median_seconds"] = Round(r.MedianSeconds),
                ["min_seconds"] = Round(r.MinSeconds),
                ["max_seconds"] = Round(r.MaxSeconds),
                ["fps"] = Round(r.FramesPerSecond),
                ["seconds_per_frame"] = Round(1 / r.FramesPerSecond),
                ["speed_vs_reference"] = reference is null ? null : Round(r.FramesPerSecond / reference.FramesPerSecond),
                ["stage_seconds_per_frame"] = stages,
                ["peak_rss_mib"] = r.PeakRssBytes < 0 ? null : Math.Round(r.PeakRssBytes / 1048576.0, 1),
                ["notes"] = r.Notes,
            });
        }
        var settings = new JsonObject();
        foreach (var (k, v) in Settings) settings[k] = v;
        return new JsonObject
        {
            ["benchmark"] = _name,
            ["title"] = _title,
            ["date_utc"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            ["machine"] = $"{Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}",
            ["warmup_runs"] = WarmupRuns,
            ["measured_runs"] = MeasuredRuns,
            ["reference_model"] = reference?.Model,
            ["settings"] = settings,
            ["rows"] = rows,
        };
    }

    public string ToMarkdown()
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(c, $"# {_title}");
        sb.AppendLine();
        sb.AppendLine(c, $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores; {WarmupRuns} warm-up run(s), median of {MeasuredRuns} measured run(s); peak RSS = VmHWM (reset per model).");
        sb.AppendLine();
        foreach (var (k, v) in Settings) sb.AppendLine(c, $"- {k}: {v}");
        if (Settings.Count > 0) sb.AppendLine();
        var stageNames = Rows.SelectMany(r => r.Stages.Select(s => s.Stage)).Distinct().ToList();
        sb.AppendLine("| model | fps | s/frame | vs " + (Rows.FirstOrDefault()?.Model ?? "reference") + " | " + string.Join(" | ", stageNames.Select(s => s + " s/frame")) + (stageNames.Count > 0 ? " | " : "") + "peak RSS MiB | runs (min–max s) |");
        sb.AppendLine("| --- | ---: | ---: | ---: | " + string.Concat(stageNames.Select(_ => "---: | ")) + "---: | --- |");
        var reference = Rows.FirstOrDefault();
        foreach (var r in Rows)
        {
            var stageCells = stageNames.Select(n => r.Stages.FirstOrDefault(s => s.Stage == n) is { Stage: not null } s ? s.SecondsPerFrame.ToString("0.0000", c) : "–");
            sb.AppendLine(c, $"| {r.Model} | {r.FramesPerSecond:0.00} | {1 / r.FramesPerSecond:0.0000} | {r.FramesPerSecond / reference!.FramesPerSecond:0.000}x | {string.Concat(stageCells.Select(x => x + " | "))}{(r.PeakRssBytes < 0 ? "–" : (r.PeakRssBytes / 1048576.0).ToString("0", c))} | {r.Runs} ({r.MinSeconds:0.000}–{r.MaxSeconds:0.000}) |");
        }
        foreach (var r in Rows.Where(r => r.Notes is not null)) sb.AppendLine().Append(c, $"- {r.Model}: {r.Notes}");
        sb.AppendLine();
        return sb.ToString();
    }

    /// <summary>Peak resident set size of this process so far (VmHWM), or -1 where /proc is missing.</summary>
    public static long PeakRssBytes()
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status)) return -1;
        foreach (var line in File.ReadLines(status))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                var kb = line["VmHWM:".Length..].Trim().Split(' ')[0];
                return long.Parse(kb, CultureInfo.InvariantCulture) * 1024;
            }
        return -1;
    }

    /// <summary>Resets VmHWM to the current RSS (Linux: writing 5 to clear_refs), so each model gets its own peak.</summary>
    public static void ResetPeakRss()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static double Median(IEnumerable<double> values)
    {
        var v = values.OrderBy(x => x).ToArray();
        if (v.Length == 0) return double.NaN;
        return v.Length % 2 == 1 ? v[v.Length / 2] : 0.5 * (v[v.Length / 2 - 1] + v[v.Length / 2]);
    }

    private static double Round(double v) => Math.Round(v, 6);
}
