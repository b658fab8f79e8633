using System.ComponentModel;
using System.Runtime.InteropServices;
using Dloral.Media;
using Dloral.Pipeline;

namespace Dloral.Cli;

/// <summary>Runs a command body and turns exceptions into a message on stderr and an exit code.</summary>
public static class CommandErrors
{
    public static async Task<int> RunAsync(CliConsole console, CancellationToken cancellationToken, Func<CancellationToken, Task<int>> body)
    {
        try
        {
            return await body(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            var (code, message) = Classify(e, cancellationToken);
            console.Error.WriteLine(message);
            return code;
        }
    }

    private static bool IsEncoderFailure(MediaException e) =>
        e.Cause.StartsWith("ffmpeg stopped encoding", StringComparison.Ordinal) || e.Cause.StartsWith("ffmpeg could not encode", StringComparison.Ordinal);

    /// <summary>Exit code and message for an exception (see <see cref="ExitCodes"/>).</summary>
    public static (int Code, string Message) Classify(Exception e, CancellationToken cancellationToken)
    {
        if (e is AggregateException { InnerExceptions.Count: 1 } agg) e = agg.InnerExceptions[0];
        return e switch
        {
            OperationCanceledException when cancellationToken.IsCancellationRequested =>
                (ExitCodes.Cancelled, "cancelled: partial output removed"),
            // The encoder dying mid-run (disk full, broken pipe, ffmpeg crash) is a runtime failure, not bad input.
            // MediaException has no kind yet, so its cause text tells (see Media/FrameWriter.cs).
            MediaException m when IsEncoderFailure(m) => (ExitCodes.RuntimeFailure, "error: " + e.Message),
            UpscaleOptionsException or UsageException or MediaException or FileNotFoundException or DirectoryNotFoundException =>
                (ExitCodes.BadInput, "error: " + e.Message),
            IOException or UnauthorizedAccessException or Win32Exception or ExternalException or OutOfMemoryException =>
                (ExitCodes.RuntimeFailure, "error: " + e.Message),
            _ => (ExitCodes.InternalError, "internal error (please report): " + e),
        };
    }
}

/// <summary>A command-line value that parsed but makes no sense (e.g. --start abc). Exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);
