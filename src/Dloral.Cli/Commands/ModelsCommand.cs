using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dloral.Checkpoints;
using Dloral.Pipeline.Compact;

namespace Dloral.Cli.Commands;

/// <summary><c>dloral models [--json]</c>: what --model accepts and where each comes from.</summary>
public static class ModelsCommand
{
    public static Command Create(CliConsole console)
    {
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        var command = new Command("models", "List the models 'upscale --model' accepts: built-in baselines, models shipped under models/, and files in the user model folder ($DLORAL_MODELS or ~/.local/share/dloral/models).")
        {
            json,
        };
        command.SetAction((parse, ct) => CommandErrors.RunAsync(console, ct, _ =>
        {
            var catalog = ModelCatalog.Default;
            var entries = catalog.Entries;
            if (parse.GetValue(json))
            {
                var arr = new JsonArray(entries.Select(e => (JsonNode)new JsonObject
                {
                    ["name"] = e.Name,
                    ["origin"] = e.Origin.ToString().ToLowerInvariant(),
                    ["description"] = e.Description,
                    ["path"] = e.Path,
                    ["scales"] = new JsonArray(e.Scales.Select(s => (JsonNode)JsonValue.Create(s)).ToArray()),
                    ["loadable"] = e.Loadable,
                }).ToArray());
                console.Out.WriteLine(arr.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                return Task.FromResult(ExitCodes.Ok);
            }
            int width = Math.Max(8, entries.Max(e => e.Name.Length));
            console.Out.WriteLine($"{"NAME".PadRight(width)}  {"ORIGIN",-8}  {"SCALES",-8}  DESCRIPTION");
            foreach (var e in entries)
                console.Out.WriteLine($"{e.Name.PadRight(width)}  {e.Origin.ToString().ToLowerInvariant(),-8}  {string.Join(",", e.Scales),-8}  {e.Description}{(e.Path is null ? "" : $" ({e.Path})")}");
            console.Out.WriteLine();
            console.Out.WriteLine("Shipped model folders: " + string.Join(", ", catalog.ShippedDirectories));
            console.Out.WriteLine("User model folder:     " + catalog.UserDirectory + " (set DLORAL_MODELS to change)");
            console.Out.WriteLine("Compact weights:       " + (Environment.GetEnvironmentVariable(CompactModelFile.EnvironmentVariable) is { Length: > 0 } env
                ? env + $" (from {CompactModelFile.EnvironmentVariable})" : $"models/compact/{CompactDloral.WeightsFileName}, or compact.safetensors in the user folder (set {CompactModelFile.EnvironmentVariable} to override)"));
            console.Out.WriteLine("Default for 'upscale': compact when its weights are found (x4), else bicubic.");
            return Task.FromResult(ExitCodes.Ok);
        }));
        return command;
    }
}
