using System.CommandLine;
using Dloral.Metrics;

namespace Dloral.Cli.Commands;

/// <summary><c>dloral eval-summary REPORT... [-o summary.md]</c>: averages per-clip eval reports into one table.</summary>
public static class EvalSummaryCommand
{
    public static Command Create(CliConsole console)
    {
        var reports = new Argument<string[]>("REPORT") { Description = "Reports of 'dloral eval' (report.json files or their folders), one per clip; rows are matched by name.", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string?>("--output", "-o") { Description = "Write the Markdown table here (and the JSON beside it, .json); default: print the table." };
        var overwrite = new Option<bool>("--overwrite", "-y") { Description = "Replace OUTPUT if it exists." };
        var command = new Command("eval-summary", "Average 'dloral eval' reports of several clips: mean of every metric per method and the PSNR-Y gain over bicubic on the same clips.")
        {
            reports, output, overwrite,
        };
        command.SetAction((parse, ct) => CommandErrors.RunAsync(console, ct, token =>
        {
            var rows = EvalSummary.Summarize(parse.GetValue(reports)!);
            var markdown = EvalSummary.ToMarkdown(rows);
            if (parse.GetValue(output) is { } path)
            {
                var jsonPath = Path.ChangeExtension(path, ".json");
                bool force = parse.GetValue(overwrite);
                if (!force && (File.Exists(path) || File.Exists(jsonPath)))
                    throw new UsageException($"{(File.Exists(path) ? path : jsonPath)} exists: use --overwrite to replace it");
                AtomicFile.WriteAllText(path, markdown);
                AtomicFile.WriteAllText(jsonPath, EvalSummary.ToJson(rows));
                console.Error.WriteLine($"wrote {path} and {jsonPath} ({rows.Count} method(s))");
            }
            else
            {
                console.Out.Write(markdown);
            }
            return Task.FromResult(ExitCodes.Ok);
        }));
        return command;
    }
}
