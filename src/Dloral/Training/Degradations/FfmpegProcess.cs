using System.Diagnostics;

namespace Dloral.Training.Degradations;

/// <summary>A minimal ffmpeg / ffprobe process pipe (stdin bytes in, stdout bytes out, in memory).</summary>
public static class FfmpegProcess
{
    /// <summary>The ffmpeg executable (override with the DLORAL_FFMPEG environment variable).</summary>
    public static string FfmpegPath { get; set; } = Environment.GetEnvironmentVariable("DLORAL_FFMPEG") ?? "ffmpeg";

    /// <summary>The ffprobe executable (override with DLORAL_FFPROBE).</summary>
    public static string FfprobePath { get; set; } = Environment.GetEnvironmentVariable("DLORAL_FFPROBE") ?? "ffprobe";

    /// <summary>Runs <paramref name="exe"/> with <paramref name="input"/> on stdin and returns all of stdout; throws with stderr on failure.</summary>
    public static byte[] Run(string exe, IReadOnlyList<string> args, byte[] input, string what)
    {
        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process proc;
        try
        {
            proc = Process.Start(psi) ?? throw new InvalidOperationException("Process.Start returned null.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"Cannot start '{exe}' for the {what} (install ffmpeg, or set DLORAL_FFMPEG / DLORAL_FFPROBE): {e.Message}", e);
        }
        using (proc)
        {
            // Write and read concurrently: a full stdout pipe would otherwise block the writer.
            var stderrTask = proc.StandardError.ReadToEndAsync();
            var writer = Task.Run(() =>
            {
                try
                {
                    proc.StandardInput.BaseStream.Write(input);
                    proc.StandardInput.Close();
                }
                catch (IOException)
                {
                    // ffmpeg exited early; its exit code and stderr tell why.
                }
            });
            using var ms = new MemoryStream();
            proc.StandardOutput.BaseStream.CopyTo(ms);
            writer.Wait();
            proc.WaitForExit();
            string err = stderrTask.Result;
            if (proc.ExitCode != 0)
                throw new InvalidOperationException($"{Path.GetFileName(exe)} failed ({what}), exit code {proc.ExitCode}: {err.Trim()}");
            return ms.ToArray();
        }
    }
}
