namespace Dloral.Cli;

/// <summary>Process exit codes (documented in --help and the README).</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>A bug: an exception nobody expected.</summary>
    public const int InternalError = 1;
    /// <summary>Bad arguments or input: unknown option, unreadable input, output exists or equals the input.</summary>
    public const int BadInput = 2;
    /// <summary>Runtime failure: ffmpeg failed while encoding, disk full, out of memory, device error.</summary>
    public const int RuntimeFailure = 3;
    /// <summary>Cancelled (Ctrl-C / SIGTERM); the partial output was removed.</summary>
    public const int Cancelled = 130;

    public const string HelpText = """
        Exit codes:
          0    success
          1    unexpected internal error (a bug: please report it)
          2    bad arguments or input (unreadable input, output exists or equals the input, unknown model...)
          3    runtime failure (ffmpeg failed while encoding, disk full, out of memory...)
          130  cancelled (Ctrl-C); no partial output is left behind
        """;
}
