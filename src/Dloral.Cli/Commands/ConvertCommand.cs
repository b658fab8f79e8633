using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Dloral.Checkpoints;
using Dloral.Pipeline;
using TorchSharp;

namespace Dloral.Cli.Commands;

/// <summary>
/// <c>dloral convert --sd DIFFUSERS_DIR --checkpoint model.pkl -o dloral-sd21.safetensors</c>: one self-describing file
/// (configs, tokenizer, adapter layout and all weights) that <c>dloral upscale --model FILE</c> loads fast.
/// </summary>
public static class ConvertCommand
{
    public static Command Create(CliConsole console)
    {
        var sd = new Option<string>("--sd") { Description = "Stable Diffusion 2.1-base diffusers folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/).", Required = true };
        var checkpoint = new Option<string>("--checkpoint") { Description = "The official DLoRAL model.pkl (read with a safe unpickler).", Required = true };
        var output = new Option<string>("--output", "-o") { Description = "Output .safetensors file (written atomically).", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "Stored precision: bfloat16 (default; half the size) or float32.", DefaultValueFactory = _ => "bfloat16" };
        dtype.AcceptOnlyFromAmong("bfloat16", "float32", "bf16", "fp32");
        var overwrite = new Option<bool>("--overwrite", "-y") { Description = "Replace OUTPUT if it exists." };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Print nothing but errors." };
        var command = new Command("convert", "Convert a Stable Diffusion 2.x diffusers folder + the official DLoRAL model.pkl into one dloral model file.")
        {
            sd, checkpoint, output, dtype, overwrite, quiet,
        };
        command.SetAction((parse, ct) => CommandErrors.RunAsync(console, ct, _ =>
        {
            string outPath = parse.GetValue(output)!;
            if (!outPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
                throw new UsageException($"-o: the output must be a .safetensors file, got '{outPath}'");
            if (File.Exists(outPath) && !parse.GetValue(overwrite))
                throw new UsageException($"-o: {outPath} exists (use --overwrite to replace it)");
            bool isQuiet = parse.GetValue(quiet);
            var type = parse.GetValue(dtype) is "float32" or "fp32" ? torch.ScalarType.Float32 : torch.ScalarType.BFloat16;
            TorchRuntime.Initialize();
            var clock = Stopwatch.StartNew();
            try
            {
                DloralModelFile.Convert(parse.GetValue(sd)!, parse.GetValue(checkpoint)!, outPath, type, isQuiet ? null : line => console.Error.WriteLine(line));
            }
            catch (Exception e) when (DloralModelSource.IsBadModelInput(e))
            {
                // Wrong/missing/mismatched input files are the user's input problem (exit 2), not a bug.
                throw new UsageException(e.Message);
            }
            if (!isQuiet)
                console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"wrote {outPath} ({new FileInfo(outPath).Length / 1048576.0:F1} MB, {(type == torch.ScalarType.BFloat16 ? "bfloat16" : "float32")}) in {clock.Elapsed.TotalSeconds:F1} s"));
            return Task.FromResult(ExitCodes.Ok);
        }));
        return command;
    }
}
