using Dloral.Cli;

namespace Dloral.Tests.Cli;

/// <summary>Runs the <c>dloral</c> entry point in-process with captured output.</summary>
internal static class CliRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public override string ToString() => $"exit {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}";
    }

    public static Result Run(params string[] args) => Run(CancellationToken.None, null, args);

    public static Result Run(CancellationToken ct, TextWriter? stdout, params string[] args)
    {
        var output = stdout ?? new StringWriter();
        var error = new StringWriter();
        int code = Program.RunAsync(args, CliConsole.Capture(output, error), ct).GetAwaiter().GetResult();
        return new Result(code, output.ToString() ?? "", error.ToString());
    }

    /// <summary>Files and folders in a directory (names), to check nothing partial was left behind.</summary>
    public static string[] Listing(string dir) =>
        Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;
}
