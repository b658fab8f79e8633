namespace Dloral.Cli;

/// <summary>Where a command writes: results to <see cref="Out"/>, messages and progress to <see cref="Error"/>.</summary>
/// <param name="Out">Standard output (results, JSON).</param>
/// <param name="Error">Standard error (progress bar, warnings, errors).</param>
/// <param name="ErrorIsTerminal">True when <see cref="Error"/> is an interactive terminal (progress bar shown by default).</param>
public sealed record CliConsole(TextWriter Out, TextWriter Error, bool ErrorIsTerminal)
{
    public static CliConsole System() => new(Console.Out, Console.Error, !Console.IsErrorRedirected);

    /// <summary>Writer-backed console for tests and embedding (never a terminal).</summary>
    public static CliConsole Capture(TextWriter output, TextWriter error) => new(output, error, false);
}
