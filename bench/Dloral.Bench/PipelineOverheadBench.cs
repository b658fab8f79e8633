using System.Diagnostics;
using System.Globalization;
using System.Text;
using Dloral.Media;
using Dloral.Pipeline;

namespace Dloral.Bench;

/// <summary>
/// The pipeline's own cost: the identity (x1) path of <c>dloral upscale</c> against plain
/// <c>ffmpeg -i in -c:v libx264 -crf 18 out</c> on the same 720p clip (target ratio ≤ 1.2), and the peak
/// RSS of the dloral process on a 60 s vs a 5 s 720p clip (target within +10%: streaming).
/// Args: [--short S] [--long S] [--repeat N] [--stages-only].
/// </summary>
internal static class PipelineOverheadBench
{
    public static int Run(string[] args)
    {
        int shortSeconds = Arg(args, "--short", 5), longSeconds = Arg(args, "--long", 60), repeat = Arg(args, "--repeat", 2);
        bool stagesOnly = args.Contains("--stages-only");
        Dloral.TorchRuntime.Initialize(Environment.GetEnvironmentVariable("DLORAL_BENCH_THREADS") is { Length: > 0 } t ? int.Parse(t, CultureInfo.InvariantCulture) : null);
        var dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "dloral-bench")).FullName;
        string shortClip = Clip(dir, shortSeconds), longClip = stagesOnly ? "" : Clip(dir, longSeconds);
        string dloral = Path.Combine(BenchUtil.RepoRoot, "src", "Dloral.Cli", "bin", "Release", "net10.0", "linux-x64", "dloral");
        if (!File.Exists(dloral)) throw new FileNotFoundException($"build Release first: {dloral}");

        // Where the time goes, in-process, on the short clip.
        var stages = new Dictionary<string, double>
        {
            ["decode only (FrameSource)"] = Time(() => { using var s = FrameSource.Open(shortClip); foreach (var _ in s) { } }),
            ["decode + tensor round trip (FrameTensors)"] = Time(() =>
            {
                using var s = FrameSource.Open(shortClip);
                foreach (var f in s) { using var t = FrameTensors.ToTensor(f); FrameTensors.ToFrame(t, 8, f.Index); }
            }),
            ["decode + identity job + encode (in-process)"] = Time(() =>
            {
                string o = Path.Combine(dir, "inproc.mp4");
                using var s = FrameSource.Open(shortClip);
                using var w = FrameWriter.Open(o, FrameWriterOptions.MatchSource(s) with { Crf = 18, Overwrite = true });
                new VideoUpscaleJob(new IdentityUpscaler()).Run(s, w);
            }),
        };
        foreach (var (k, v) in stages) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{k}: {v:F2} s"));
        if (stagesOnly) return 0;

        string outFfmpeg = Path.Combine(dir, "ffmpeg.mp4"), outOurs = Path.Combine(dir, "ours.mp4");
        var ffmpegRuns = Enumerable.Range(0, repeat).Select(_ => Measure("ffmpeg", ["-hide_banner", "-nostdin", "-v", "error", "-y", "-i", shortClip, "-c:v", "libx264", "-crf", "18", outFfmpeg])).ToList();
        var oursRuns = Enumerable.Range(0, repeat).Select(_ => Measure(dloral, ["upscale", shortClip, "-o", outOurs, "--scale", "1", "--model", "identity", "--crf", "18", "--overwrite", "--quiet"])).ToList();
        double tFfmpeg = ffmpegRuns.Min(r => r.Seconds), tOurs = oursRuns.Min(r => r.Seconds);
        double cFfmpeg = ffmpegRuns.Min(r => r.CpuSeconds), cOurs = oursRuns.Min(r => r.CpuSeconds);

        // Peak RSS: the preset does not change the dloral process's memory (x264 runs in the ffmpeg child), so use a fast one.
        var rssShort = Measure(dloral, ["upscale", shortClip, "-o", outOurs, "--scale", "1", "--model", "identity", "--preset", "ultrafast", "--overwrite", "--quiet"]);
        var rssLong = Measure(dloral, ["upscale", longClip, "-o", outOurs, "--scale", "1", "--model", "identity", "--preset", "ultrafast", "--overwrite", "--quiet"]);
        double ratio = tOurs / tFfmpeg, rssGrowth = (double)rssLong.PeakRssKb / rssShort.PeakRssKb - 1;

        var result = new
        {
            machine = $"{Environment.ProcessorCount} cores, load average at start {File.ReadAllText("/proc/loadavg").Split(' ')[0]}",
            clip = "1280x720 testsrc2 30 fps, libx264",
            stages_seconds = stages,
            ffmpeg_seconds = ffmpegRuns.Select(r => r.Seconds),
            dloral_identity_seconds = oursRuns.Select(r => r.Seconds),
            time_ratio = ratio,
            ffmpeg_cpu_seconds = ffmpegRuns.Select(r => r.CpuSeconds),
            dloral_identity_cpu_seconds = oursRuns.Select(r => r.CpuSeconds),
            cpu_ratio = cOurs / cFfmpeg,
            time_ratio_target = 1.2,
            peak_rss_kb_short = rssShort.PeakRssKb,
            peak_rss_kb_long = rssLong.PeakRssKb,
            short_seconds = shortSeconds,
            long_seconds = longSeconds,
            rss_growth = rssGrowth,
            rss_growth_target = 0.10,
            ffmpeg_peak_rss_kb = ffmpegRuns.Max(r => r.PeakRssKb),
        };
        var md = new StringBuilder();
        md.AppendLine("# pipeline-overhead");
        md.AppendLine();
        md.AppendLine($"Machine: {result.machine}. Clip: {result.clip}. Best of {repeat} runs. Wall times are noisy when other jobs share the 2 cores; the CPU-time ratio is the steadier figure.");
        md.AppendLine();
        md.AppendLine("| measurement | value | target |");
        md.AppendLine("| --- | --- | --- |");
        md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| plain `ffmpeg -i in -c:v libx264 -crf 18 out`, {shortSeconds} s clip | {tFfmpeg:F2} s | |"));
        md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| `dloral upscale --scale 1 --model identity --crf 18`, same clip | {tOurs:F2} s | |"));
        md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| wall-time ratio dloral / ffmpeg | **{ratio:F2}** | ≤ 1.2 |"));
        md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| CPU time (user+sys, incl. ffmpeg children): ffmpeg {cFfmpeg:F2} s, dloral {cOurs:F2} s, ratio | **{cOurs / cFfmpeg:F2}** | |"));
        md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| dloral peak RSS, {shortSeconds} s clip | {rssShort.PeakRssKb / 1024.0:F0} MiB | |"));
        md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| dloral peak RSS, {longSeconds} s clip | {rssLong.PeakRssKb / 1024.0:F0} MiB | |"));
        md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| RSS growth {longSeconds} s vs {shortSeconds} s | **{rssGrowth * 100:+0.0;-0.0}%** | ≤ +10% |"));
        md.AppendLine();
        md.AppendLine("In-process stages on the short clip:");
        md.AppendLine();
        foreach (var (k, v) in stages) md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"- {k}: {v:F2} s"));
        BenchUtil.WriteResults("pipeline-overhead", result, md.ToString());
        return 0;
    }

    private static int Arg(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    private static string Clip(string dir, int seconds)
    {
        string path = Path.Combine(dir, $"testsrc2_720p_{seconds}s.mp4");
        if (!File.Exists(path))
            BenchUtil.Run("ffmpeg", ["-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=30",
                "-t", seconds.ToString(CultureInfo.InvariantCulture), "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", path]);
        return path;
    }

    private static double Time(Action action)
    {
        var sw = Stopwatch.StartNew();
        action();
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// Runs a process under /usr/bin/time: wall time, CPU time of it and the children it waited for
    /// (ffmpeg included; robust when other jobs load the machine), and its own peak RSS (VmHWM polled from /proc).
    /// </summary>
    private static (double Seconds, double CpuSeconds, long PeakRssKb) Measure(string exe, string[] args)
    {
        string timeFile = Path.GetTempFileName();
        var psi = new ProcessStartInfo("/usr/bin/time") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in (string[])["-f", "%e %U %S", "-o", timeFile, exe, .. args]) psi.ArgumentList.Add(a);
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var outp = p.StandardOutput.ReadToEndAsync();
        long peak = 0;
        int? child = null;
        while (!p.WaitForExit(50))
        {
            try
            {
                child ??= File.ReadAllText($"/proc/{p.Id}/task/{p.Id}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).FirstOrDefault() is int c and > 0 ? c : null;
                if (child is null) continue;
                foreach (var line in File.ReadLines($"/proc/{child}/status"))
                    if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                        peak = Math.Max(peak, long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture));
            }
            catch (IOException) { }
        }
        double seconds = sw.Elapsed.TotalSeconds;
        if (p.ExitCode != 0) throw new InvalidOperationException($"{exe} {string.Join(' ', args)} failed ({p.ExitCode}): {err.Result}");
        var t = File.ReadAllLines(timeFile).Last().Split(' ').Select(x => double.Parse(x, CultureInfo.InvariantCulture)).ToArray();
        File.Delete(timeFile);
        return (seconds, t[1] + t[2], peak);
    }
}
