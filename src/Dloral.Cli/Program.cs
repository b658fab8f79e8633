using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using Dloral.Cli.Commands;

namespace Dloral.Cli;

/// <summary>The <c>dloral</c> command. <see cref="RunAsync"/> is the in-process entry point tests use.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        PreferPassiveOpenMpThreads();
        return RunAsync(args).GetAwaiter().GetResult();
    }

    /// <summary>
    /// libtorch's OpenMP threads spin while waiting for work. Between the small per-frame ops of the
    /// streaming pipeline that burns a core for nothing (measured: the identity pipeline's own CPU time
    /// 3.1 s → 1.9 s on a 5 s 720p clip) and starves the ffmpeg processes next to us. Must be set in the
    /// native environment before libtorch loads; a value the user set wins.
    /// </summary>
    private static void PreferPassiveOpenMpThreads()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is not null) return;
        try { _ = setenv("OMP_WAIT_POLICY", "PASSIVE", 0); }
        catch (DllNotFoundException) { }
        catch (EntryPointNotFoundException) { }
    }

    [System.Runtime.InteropServices.DllImport("libc", CharSet = System.Runtime.InteropServices.CharSet.Ansi)]
#pragma warning disable SYSLIB1054 // one call at startup: the source-generated form needs unsafe code enabled for nothing
    private static extern int setenv(string name, string value, int overwrite);
#pragma warning restore SYSLIB1054

    /// <summary>
    /// Parses and runs a command line. <paramref name="console"/> null = the real console, with Ctrl-C
    /// handling; tests pass their own writers and cancel through <paramref name="cancellationToken"/>.
    /// </summary>
    public static async Task<int> RunAsync(string[] args, CliConsole? console = null, CancellationToken cancellationToken = default)
    {
        bool real = console is null;
        console ??= CliConsole.System();
        var root = BuildRootCommand(console);
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0 && parse.Action is ParseErrorAction)
        {
            // Just the errors and a pointer to --help: the full help text would bury them.
            foreach (var error in parse.Errors) console.Error.WriteLine("error: " + error.Message);
            console.Error.WriteLine($"Run '{(parse.CommandResult.Command is RootCommand ? "dloral" : "dloral " + parse.CommandResult.Command.Name)} --help' for usage.");
            return ExitCodes.BadInput;
        }
        var config = new InvocationConfiguration
        {
            Output = console.Out,
            Error = console.Error,
            // Ctrl-C / SIGTERM cancel the token; commands clean up and return 130 within this time.
            ProcessTerminationTimeout = real ? TimeSpan.FromSeconds(15) : null,
        };
        return await parse.InvokeAsync(config, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The command tree. One line per command: each lives in its own file under Commands/.</summary>
    public static RootCommand BuildRootCommand(CliConsole console)
    {
        var root = new RootCommand("dloral: real-world video super-resolution (DLoRAL) for videos, images and image folders.");
        root.Add(UpscaleCommand.Create(console));
        root.Add(InfoCommand.Create(console));
        root.Add(ModelsCommand.Create(console));
        root.Add(DegradeCommand.Create(console));
        root.Add(EvalCommand.Create(console));
        root.Add(CompareCommand.Create(console));
        root.Add(EvalSummaryCommand.Create(console));
        root.Add(TrainCommand.Create(console));
        root.Add(ConvertCommand.Create(console));
        AppendExitCodesToHelp(root);
        return root;
    }

    private static void AppendExitCodesToHelp(RootCommand root)
    {
        foreach (var help in root.Options.OfType<HelpOption>())
            if (help.Action is HelpAction inner) help.Action = new ExitCodesHelpAction(inner);
    }

    private sealed class ExitCodesHelpAction(HelpAction inner) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            int rc = inner.Invoke(parseResult);
            parseResult.InvocationConfiguration.Output.WriteLine(ExitCodes.HelpText);
            return rc;
        }
    }
}
