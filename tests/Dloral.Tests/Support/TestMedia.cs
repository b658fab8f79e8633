using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Dloral.Tests.Support;

/// <summary>
/// Generates small real media with ffmpeg's test sources (testsrc2 video, sine audio) in a private temp folder that
/// is deleted on Dispose. Sizes and frame counts are tiny so tests stay fast. Shared by the Media and CLI tests.
/// </summary>
public sealed class TestMedia : IDisposable
{
    public TestMedia()
    {
        Dir = Path.Combine(Path.GetTempPath(), "dloral-test-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(Dir);
    }

    /// <summary>The private temp folder.</summary>
    public string Dir { get; }

    public string PathOf(string name) => Path.Combine(Dir, name);

    /// <summary>
    /// A testsrc2 clip. <paramref name="rate"/> is an ffmpeg rate ("30000/1001"); audio is a 440 Hz sine of the same
    /// duration; subtitles are two SubRip cues converted to the container's text format (mov_text / srt).
    /// </summary>
    public string Video(string name = "in.mp4", int width = 64, int height = 48, string rate = "30000/1001", int frames = 10,
        bool audio = false, bool subtitles = false, string pixelFormat = "yuv420p", string codec = "libx264",
        int? rotate = null, string? audioCodec = null)
    {
        string output = PathOf(name);
        double seconds = frames / ParseRate(rate);
        string dur = seconds.ToString("0.######", CultureInfo.InvariantCulture);
        var args = new List<string> { "-f", "lavfi", "-i", $"testsrc2=s={width}x{height}:r={rate}" };
        if (audio) args.AddRange(["-f", "lavfi", "-t", dur, "-i", "sine=f=440:r=48000"]);
        if (subtitles)
        {
            string srt = PathOf(Path.GetFileNameWithoutExtension(name) + ".srt");
            File.WriteAllText(srt, "1\n00:00:00,000 --> 00:00:00,150\nHello\n\n2\n00:00:00,150 --> 00:00:00,300\nWorld\n");
            args.AddRange(["-i", srt]);
        }
        args.AddRange(["-map", "0:v"]);
        if (audio) args.AddRange(["-map", "1:a"]);
        if (subtitles) args.AddRange(["-map", $"{(audio ? 2 : 1)}:s"]);
        args.AddRange(["-frames:v", frames.ToString(CultureInfo.InvariantCulture), "-c:v", codec, "-pix_fmt", pixelFormat]);
        if (codec is "libx264" or "libx265") args.AddRange(["-preset", "ultrafast"]);
        if (codec == "libx265") args.AddRange(["-x265-params", "log-level=error"]);
        if (audio) args.AddRange(["-c:a", audioCodec ?? (name.EndsWith(".mkv", StringComparison.Ordinal) ? "libopus" : "aac")]);
        if (subtitles) args.AddRange(["-c:s", name.EndsWith(".mkv", StringComparison.Ordinal) ? "srt" : "mov_text"]);
        if (width % 2 != 0 || height % 2 != 0)
            args.AddRange(["-vf", $"scale={width}:{height}"]); // testsrc2 rounds odd sizes down to even
        if (rotate is int r)
        {
            // ffmpeg 5.1 sets the display matrix from the "rotate" tag only when stream-copying.
            string plain = PathOf("unrotated-" + name);
            args.Add(plain);
            Ffmpeg([.. args]);
            Ffmpeg("-i", plain, "-map", "0", "-c", "copy", "-metadata:s:v:0", $"rotate={r}", output);
            File.Delete(plain);
            return output;
        }
        args.Add(output);
        Ffmpeg([.. args]);
        return output;
    }

    /// <summary>
    /// A variable-frame-rate clip: <paramref name="fastFrames"/> frames at 30 fps, then <paramref name="slowFrames"/> at 15 fps,
    /// with a sine audio track covering the whole duration (fast/30 + slow/15 seconds).
    /// </summary>
    public string VariableFrameRateVideo(string name = "vfr.mp4", int fastFrames = 15, int slowFrames = 15, int width = 64, int height = 48)
    {
        string output = PathOf(name);
        string silent = PathOf("silent-" + name);
        int total = fastFrames + slowFrames;
        double seconds = fastFrames / 30.0 + slowFrames / 15.0;
        string f = fastFrames.ToString(CultureInfo.InvariantCulture);
        Ffmpeg("-f", "lavfi", "-i", $"testsrc2=s={width}x{height}:r=30",
            "-vf", $"setpts='if(lt(N,{f}),N/30,{f}/30+(N-{f})/15)/TB'", "-fps_mode", "vfr",
            "-frames:v", total.ToString(CultureInfo.InvariantCulture),
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", silent);
        // Audio added in a second pass: a frame limit in the first would also cut the audio short.
        Ffmpeg("-i", silent, "-f", "lavfi", "-t", seconds.ToString("0.######", CultureInfo.InvariantCulture), "-i", "sine=f=440:r=48000",
            "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", output);
        File.Delete(silent);
        return output;
    }

    /// <summary>A single testsrc2 image (pixel format e.g. rgb24, rgba, gray, rgb48be).</summary>
    public string Image(string name = "in.png", int width = 32, int height = 24, string pixelFormat = "rgb24", int frameOffset = 0)
    {
        string output = PathOf(name);
        Ffmpeg("-f", "lavfi", "-i", $"testsrc2=s={width}x{height}:r=25", "-vf", $"trim=start_frame={frameOffset}",
            "-frames:v", "1", "-pix_fmt", pixelFormat, "-update", "1", output);
        return output;
    }

    /// <summary>A solid-colour image (colour as ffmpeg names it: "red", "0x102030").</summary>
    public string SolidImage(string name, string color, int width = 16, int height = 12, string pixelFormat = "rgb24")
    {
        string output = PathOf(name);
        Ffmpeg("-f", "lavfi", "-i", $"color=c={color}:s={width}x{height}", "-frames:v", "1", "-pix_fmt", pixelFormat, "-update", "1", output);
        return output;
    }

    /// <summary>Runs ffmpeg (quiet, overwriting); throws with its error output when it fails.</summary>
    public static void Ffmpeg(params string[] args)
    {
        var (code, _, err) = Run("ffmpeg", ["-hide_banner", "-nostdin", "-v", "error", "-y", .. args]);
        if (code != 0) throw new InvalidOperationException($"ffmpeg {string.Join(' ', args)} failed: {err}");
    }

    /// <summary>ffprobe -show_format -show_streams as JSON, for independent checks of what we wrote.</summary>
    public static JsonDocument ProbeJson(string path)
    {
        var (code, stdout, err) = Run("ffprobe", ["-v", "error", "-of", "json", "-show_format", "-show_streams", path]);
        if (code != 0) throw new InvalidOperationException($"ffprobe {path} failed: {err}");
        return JsonDocument.Parse(stdout);
    }

    /// <summary>Duration in seconds of the stream of type "audio"/"video"/"subtitle" (first of that type), from ffprobe.</summary>
    public static double StreamDuration(string path, string codecType)
    {
        // Decoding the packets gives the real extent even when the container's header lacks a duration (Matroska).
        var (code, stdout, err) = Run("ffprobe", ["-v", "error", "-select_streams", codecType[0] + ":0",
            "-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0", path]);
        if (code != 0) throw new InvalidOperationException($"ffprobe {path} failed: {err}");
        double first = double.MaxValue, end = double.MinValue;
        foreach (var line in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(',');
            if (!double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double pts)) continue;
            double dur = parts.Length > 1 && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d : 0;
            first = Math.Min(first, pts);
            end = Math.Max(end, pts + dur);
        }
        return end > first ? end - first : 0;
    }

    /// <summary>Number of streams of a codec type ("audio", "subtitle", "video").</summary>
    public static int CountStreams(string path, string codecType)
    {
        using var doc = ProbeJson(path);
        return doc.RootElement.GetProperty("streams").EnumerateArray()
            .Count(s => s.GetProperty("codec_type").GetString() == codecType);
    }

    /// <summary>The JSON of the first stream of a codec type.</summary>
    public static JsonElement FirstStream(string path, string codecType)
    {
        using var doc = ProbeJson(path);
        return doc.RootElement.GetProperty("streams").EnumerateArray()
            .First(s => s.GetProperty("codec_type").GetString() == codecType).Clone();
    }

    public static (int ExitCode, string Stdout, string Stderr) Run(string exe, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout, err.Result);
    }

    private static double ParseRate(string rate)
    {
        var parts = rate.Split('/');
        double n = double.Parse(parts[0], CultureInfo.InvariantCulture);
        return parts.Length == 2 ? n / double.Parse(parts[1], CultureInfo.InvariantCulture) : n;
    }

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
