using System.ComponentModel;
using System.Diagnostics;
using System.IO.Pipes;
using System.Runtime.InteropServices;
using System.Text;

namespace Dloral.Media;

/// <summary>Locates and starts the ffmpeg/ffprobe binaries (PATH, or DLORAL_FFMPEG / DLORAL_FFPROBE).</summary>
internal static class FfmpegTools
{
    public static string Ffmpeg => Environment.GetEnvironmentVariable("DLORAL_FFMPEG") is { Length: > 0 } p ? p : "ffmpeg";
    public static string Ffprobe => Environment.GetEnvironmentVariable("DLORAL_FFPROBE") is { Length: > 0 } p ? p : "ffprobe";

    private static readonly Lazy<Version?> ToolVersion = new(ReadVersion);

    /// <summary>
    /// The frame-rate mode option: "-fps_mode" since ffmpeg 5.1; older releases (Ubuntu 22.04 ships 4.4) only know "-vsync",
    /// which takes the same values.
    /// </summary>
    public static string FpsModeOption => ToolVersion.Value is { } v && v < new Version(5, 1) ? "-vsync" : "-fps_mode";

    private static Version? ReadVersion()
    {
        try
        {
            var (code, stdout, _) = Run(Ffmpeg, ["-hide_banner", "-version"], CancellationToken.None);
            // "ffmpeg version 5.1.9-0+deb12u1 ..." (git builds say "N-..." and are new: null = unknown → modern options).
            var words = stdout.Split(' ', 4);
            if (code == 0 && words.Length > 2 && words[1] == "version")
            {
                var numeric = new string(words[2].TakeWhile(c => char.IsAsciiDigit(c) || c == '.').ToArray()).Trim('.');
                if (!numeric.Contains('.', StringComparison.Ordinal)) numeric += ".0";
                if (Version.TryParse(numeric, out var v)) return v;
            }
        }
        catch (MediaException) { }
        return null;
    }

    /// <summary>Starts a tool with redirected pipes; stderr is drained into a tail buffer so the child never blocks on it.</summary>
    public static (Process Process, StderrTail Stderr) Start(string exe, IEnumerable<string> args, bool redirectStdin, bool redirectStdout)
    {
        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardInput = redirectStdin,
            RedirectStandardOutput = redirectStdout,
            RedirectStandardError = true,
            UseShellExecute = false,
            CreateNoWindow = true,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        // DLORAL_TRACE_FFMPEG=1 prints every command line: the quickest way to reproduce a media problem by hand.
        if (Environment.GetEnvironmentVariable("DLORAL_TRACE_FFMPEG") == "1")
            Console.Error.WriteLine("[dloral] " + exe + " " + string.Join(' ', psi.ArgumentList.Select(a => a.Contains(' ', StringComparison.Ordinal) ? $"'{a}'" : a)));
        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new Win32Exception($"could not start {exe}");
        }
        catch (Win32Exception ex)
        {
            throw new MediaException(exe,
                $"cannot run it ({ex.Message}); install ffmpeg (Debian: sudo apt-get install -y ffmpeg) or set DLORAL_FFMPEG/DLORAL_FFPROBE", ex);
        }
        var tail = new StderrTail(process);
        return (process, tail);
    }

    /// <summary>Runs a tool to completion and returns (exit code, stdout, stderr).</summary>
    public static (int ExitCode, string Stdout, string Stderr) Run(string exe, IEnumerable<string> args, CancellationToken ct)
    {
        var (process, tail) = Start(exe, args, redirectStdin: false, redirectStdout: true);
        using (process)
        using (ct.Register(() => KillQuietly(process)))
        {
            string stdout = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            ct.ThrowIfCancellationRequested();
            return (process.ExitCode, stdout, tail.Text);
        }
    }

    /// <summary>
    /// Raises a pipe's capacity to 1 MB (Linux F_SETPIPE_SZ; the default is 64 KB): a 720p RGB frame then moves in
    /// 3 chunks instead of 42, which cuts context switches between us and ffmpeg by an order of magnitude.
    /// Best effort: no effect elsewhere or when the system limit is lower.
    /// </summary>
    public static void EnlargePipe(Stream stream)
    {
        if (!OperatingSystem.IsLinux() || stream is not PipeStream pipe) return;
        try
        {
            int fd = (int)pipe.SafePipeHandle.DangerousGetHandle();
            _ = fcntl(fd, FSetPipeSize, 1 << 20);
        }
        catch (EntryPointNotFoundException) { }
        catch (DllNotFoundException) { }
    }

    private const int FSetPipeSize = 1031;

    [DllImport("libc", SetLastError = true)]
    private static extern int fcntl(int fd, int cmd, int arg);

    public static void KillQuietly(Process process)
    {
        try
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException) { }
        catch (Win32Exception) { }
    }

    /// <summary>
    /// The useful part of ffmpeg's error output: the last non-empty lines with a leading "path: " removed
    /// ("in.mp4: Invalid data found when processing input" → "Invalid data found when processing input").
    /// </summary>
    public static string Cause(string stderr, string? path = null, int maxLines = 2)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => l.Length > 0 && !l.StartsWith("Conversion failed", StringComparison.Ordinal)
                        && !l.StartsWith("Error initializing output stream", StringComparison.Ordinal)
                        && !l.StartsWith("Last message repeated", StringComparison.Ordinal))
            .Select(l => StripPath(StripContext(l), path))
            .Where(l => l.Length > 0)
            .Distinct()
            .ToList();
        if (lines.Count == 0) return "no error message from ffmpeg";
        return string.Join("; ", lines.Skip(Math.Max(0, lines.Count - maxLines)));
    }

    /// <summary>Drops ffmpeg's "[mov,mp4 @ 0x55d0...] " context prefix: the address is noise for a user.</summary>
    private static string StripContext(string line)
    {
        if (line.StartsWith('[') && line.IndexOf(" @ 0x", StringComparison.Ordinal) is int at && at > 0)
        {
            int close = line.IndexOf("] ", at, StringComparison.Ordinal);
            if (close > 0) return line[(close + 2)..].Trim();
        }
        return line;
    }

    /// <summary>
    /// "file:/full/path": ffmpeg would otherwise read "a:b.mp4" as protocol "a", "pipe:1" as a pipe, and so on.
    /// </summary>
    public static string FileUrl(string path) => "file:" + Path.GetFullPath(path);

    private static string StripPath(string line, string? path)
    {
        if (path is not null)
        {
            foreach (var p in new[] { FileUrl(path), path, Path.GetFileName(path) })
                if (p.Length > 0 && line.StartsWith(p + ": ", StringComparison.Ordinal)) return line[(p.Length + 2)..];
        }
        return line;
    }
}

/// <summary>Reads a child's stderr asynchronously, keeping only the last few KB (ffmpeg can be chatty).</summary>
internal sealed class StderrTail
{
    private const int MaxChars = 8192;
    private readonly StringBuilder _text = new();
    private readonly Task _pump;

    public StderrTail(Process process)
    {
        var reader = process.StandardError;
        _pump = Task.Run(async () =>
        {
            var buffer = new char[4096];
            int n;
            while ((n = await reader.ReadAsync(buffer).ConfigureAwait(false)) > 0)
            {
                lock (_text)
                {
                    _text.Append(buffer, 0, n);
                    if (_text.Length > 2 * MaxChars) _text.Remove(0, _text.Length - MaxChars);
                }
            }
        });
    }

    /// <summary>Everything kept so far; waits briefly for the pump to reach the end when the process has exited.</summary>
    public string Text
    {
        get
        {
            try { _pump.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
            lock (_text) return _text.Length > MaxChars ? _text.ToString(_text.Length - MaxChars, MaxChars) : _text.ToString();
        }
    }
}
