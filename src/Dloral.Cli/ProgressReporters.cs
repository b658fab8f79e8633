using System.Globalization;
using System.Text.Json;
using Dloral.Pipeline;
using Spectre.Console;

namespace Dloral.Cli;

/// <summary>How <c>upscale</c> shows progress.</summary>
public enum ProgressMode { Auto, Bar, Json, None }

/// <summary>Calls a delegate synchronously (unlike Progress&lt;T&gt;, which posts to the thread pool and may reorder).</summary>
internal sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}

/// <summary>One JSON object per line on stdout: {"frame":N,"total":N,"fps":F,"eta_seconds":F}.</summary>
internal sealed class JsonLinesProgress(TextWriter output) : IProgress<UpscaleProgress>
{
    private readonly object _gate = new();

    public void Report(UpscaleProgress p)
    {
        var line = JsonSerializer.Serialize(new
        {
            frame = p.FramesDone,
            total = p.TotalFrames,
            fps = Math.Round(p.FramesPerSecond, 3),
            eta_seconds = p.Eta is { } eta ? Math.Round(eta.TotalSeconds, 3) : (double?)null,
        });
        lock (_gate)
        {
            output.WriteLine(line);
            output.Flush();
        }
    }
}

/// <summary>A Spectre.Console progress bar on stderr: frames done/total, fps, ETA.</summary>
internal static class ProgressBar
{
    public static async Task<T> RunAsync<T>(TextWriter error, string title, Func<IProgress<UpscaleProgress>, Task<T>> work)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(error) });
        T result = default!;
        await console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(title), maxValue: 1);
                task.IsIndeterminate = true;
                result = await work(new InlineProgress<UpscaleProgress>(p =>
                {
                    if (p.TotalFrames is { } total) { task.IsIndeterminate = false; task.MaxValue = Math.Max(total, p.FramesDone); }
                    task.Value = p.FramesDone;
                    task.Description = Markup.Escape($"{title} {Describe(p)}");
                })).ConfigureAwait(false);
                task.StopTask();
            }).ConfigureAwait(false);
        return result;
    }

    public static string Describe(UpscaleProgress p)
    {
        var total = p.TotalFrames is { } t ? t.ToString(CultureInfo.InvariantCulture) : "?";
        var eta = p.Eta is { } e ? (e.TotalHours >= 1 ? e.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture) : e.ToString(@"m\:ss", CultureInfo.InvariantCulture)) : "?";
        return string.Create(CultureInfo.InvariantCulture, $"{p.FramesDone}/{total} frames  {p.FramesPerSecond:F1} fps  ETA {eta}");
    }
}
