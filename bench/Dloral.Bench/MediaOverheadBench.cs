using System.Diagnostics;
using System.Globalization;
using Dloral.Media;

namespace Dloral.Bench;

/// <summary>
/// Cost of the media layer alone (no upscaler, no CLI): decode → raw frames → encode through
/// <see cref="FrameSource"/> and <see cref="FrameWriter"/> vs plain <c>ffmpeg -i in -c:v libx264 -crf 18 out</c>
/// on a 720p testsrc2 clip, and peak RSS of that identity copy for a short vs a long clip.
/// Usage: <c>media-overhead [--seconds 10] [--short 5] [--long 60] [--preset medium]</c>;
/// <c>media-identity IN OUT [--tensors]</c> is the child run measured with /usr/bin/time.
/// Register in Program.cs: <c>["media-overhead"] = (..., MediaOverheadBench.Run), ["media-identity"] = (..., MediaOverheadBench.Identity)</c>.
/// </summary>
internal static class MediaOverheadBench
{
    public static int Run(string[] args)
    {
        int seconds = Arg(args, "--seconds", 10), shortSeconds = Arg(args, "--short", 5), longSeconds = Arg(args, "--long", 60);
        string preset = BenchUtil.Arg(args, "--preset", "medium");
        string dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "dloral-media-bench")).FullName;
        string clip = Clip(dir, seconds);
        string outFfmpeg = Path.Combine(dir, "ffmpeg.mp4"), outOurs = Path.Combine(dir, "ours.mp4");

        double plain = Time("ffmpeg", ["-hide_banner", "-nostdin", "-v", "error", "-y", "-i", clip, "-c:v", "libx264", "-crf", "18", "-preset", preset, outFfmpeg]).Seconds;
        double ours = Time(Self()[0], [.. Self()[1..], "media-identity", clip, outOurs, "--preset", preset]).Seconds;
        double oursTensors = Time(Self()[0], [.. Self()[1..], "media-identity", clip, outOurs, "--preset", preset, "--tensors"]).Seconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{seconds} s 1280x720 clip, preset {preset}: plain ffmpeg {plain:F2} s, FrameSource→FrameWriter {ours:F2} s (ratio {ours / plain:F3}), " +
            $"with FrameTensors round trip {oursTensors:F2} s (ratio {oursTensors / plain:F3})"));

        // Memory: x264's memory lives in the ffmpeg child, so a fast preset measures our process alike.
        string shortClip = Clip(dir, shortSeconds), longClip = Clip(dir, longSeconds);
        var a = Time(Self()[0], [.. Self()[1..], "media-identity", shortClip, outOurs, "--preset", "ultrafast", "--tensors"]);
        var b = Time(Self()[0], [.. Self()[1..], "media-identity", longClip, outOurs, "--preset", "ultrafast", "--tensors"]);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"peak RSS of the .NET process: {shortSeconds} s clip {a.PeakRssKb / 1024.0:F1} MB, {longSeconds} s clip {b.PeakRssKb / 1024.0:F1} MB " +
            $"({(double)b.PeakRssKb / a.PeakRssKb - 1:+0.0%;-0.0%})"));
        return 0;
    }

    /// <summary>Copies IN to OUT frame by frame (optionally through FrameTensors), keeping rate and audio.</summary>
    public static int Identity(string[] args)
    {
        string input = args[0], output = args[1];
        bool tensors = args.Contains("--tensors");
        using var source = FrameSource.Open(input);
        using var writer = FrameWriter.Open(output, FrameWriterOptions.MatchSource(source) with { Overwrite = true, Preset = BenchUtil.Arg(args, "--preset", "medium") });
        foreach (var frame in source)
        {
            if (tensors)
            {
                using var t = FrameTensors.ToTensor(frame);
                writer.Write(FrameTensors.ToFrame(t, frame.Depth, frame.Index));
            }
            else writer.Write(frame);
        }
        writer.Complete();
        return 0;
    }

    private static string Clip(string dir, int seconds)
    {
        string path = Path.Combine(dir, $"testsrc2-720p-{seconds}s.mp4");
        if (!File.Exists(path))
            Run("ffmpeg", ["-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", $"testsrc2=s=1280x720:r=30:d={seconds}",
                "-f", "lavfi", "-i", $"sine=f=440:r=48000:d={seconds}", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-c:a", "aac", path]);
        return path;
    }

    /// <summary>How to start this bench again as a child: apphost, or dotnet + dll.</summary>
    private static string[] Self()
    {
        string exe = Environment.ProcessPath ?? "dotnet";
        return Path.GetFileNameWithoutExtension(exe) == "dotnet" ? [exe, typeof(MediaOverheadBench).Assembly.Location] : [exe];
    }

    private static (double Seconds, long PeakRssKb) Time(string exe, string[] args)
    {
        var sw = Stopwatch.StartNew();
        string stderr = Run("/usr/bin/time", ["-v", exe, .. args]);
        sw.Stop();
        long rss = stderr.Split('\n').Where(l => l.Contains("Maximum resident set size", StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split(':')[1].Trim(), CultureInfo.InvariantCulture)).FirstOrDefault();
        return (sw.Elapsed.TotalSeconds, rss);
    }

    private static string Run(string exe, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{exe} {string.Join(' ', args)} failed: {err}");
        return err;
    }

    private static int Arg(string[] args, string name, int fallback) =>
        Array.IndexOf(args, name) is int i && i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}
