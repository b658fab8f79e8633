using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Dloral.Training;

namespace Dloral.Cli.Commands;

/// <summary><c>dloral train --config FILE [--resume DIR] [--steps N] [--out DIR] [--data DIR]</c>: DLoRAL fine-tuning.</summary>
public static class TrainCommand
{
    public static Command Create(CliConsole console)
    {
        var config = new Option<string>("--config", "-c") { Description = "Training config (JSON, see configs/tiny.json).", Required = true };
        var resume = new Option<string?>("--resume") { Description = "Continue from a checkpoint folder, or the newest checkpoint of a run folder." };
        var steps = new Option<long?>("--steps") { Description = "Train until this many steps in total (default: the config's steps)." };
        var output = new Option<string?>("--out", "-o") { Description = "Run folder (checkpoints/, train_log.jsonl, validation/); default: the config's output." };
        var data = new Option<string?>("--data") { Description = "Training data folder (overrides the config's data.folder)." };
        var threads = new Option<int?>("--threads") { Description = "Torch CPU threads." };
        var export = new Option<string?>("--export") { Description = "Compact model (model.source 'compact'): write the trained weights to this .safetensors file at the end (the file `dloral upscale --model` loads). With --resume RUN --steps 0 it exports a checkpoint without training." };
        var exportDtype = new Option<string>("--export-dtype") { Description = "Storage type of --export: float32, float16 (half the size; weights are loaded back into float32) or bfloat16.", DefaultValueFactory = _ => "float32" };
        exportDtype.AcceptOnlyFromAmong("float32", "float16", "bfloat16");
        var command = new Command("train", "Train or fine-tune DLoRAL (consistency and enhancement stages, checkpoints every N steps and at exit; Ctrl-C saves and stops).")
        {
            config, resume, steps, output, data, threads, export, exportDtype,
        };
        command.SetAction((parse, ct) => CommandErrors.RunAsync(console, ct, async token =>
        {
            TrainingConfig cfg;
            try
            {
                cfg = TrainingConfig.Load(parse.GetValue(config)!);
            }
            catch (InvalidDataException e)
            {
                throw new UsageException(e.Message);
            }
            if (parse.GetValue(steps) is { } n)
            {
                if (n < 0) throw new UsageException($"--steps {n}: must be >= 0");
                cfg.Steps = n;
            }
            TorchRuntime.Initialize(parse.GetValue(threads) ?? cfg.Threads);
            // Every step frees and reallocates the same crop-sized buffers: keeping them in the heap instead of returning
            // them to the kernel cut the system time (page faults), measured at ~40 % of a compact-model step.
            TorchRuntime.ReuseFreedMemory();
            var options = new TrainerOptions
            {
                Console = console.Error,
                Output = parse.GetValue(output) is { } o ? Path.GetFullPath(o) : null,
                DataFolder = parse.GetValue(data) is { } d ? Path.GetFullPath(d) : null,
            };
            var resumeFrom = parse.GetValue(resume);
            var exportTo = parse.GetValue(export);
            var storage = parse.GetValue(exportDtype) switch { "float16" => TorchSharp.torch.ScalarType.Float16, "bfloat16" => TorchSharp.torch.ScalarType.BFloat16, _ => TorchSharp.torch.ScalarType.Float32 };
            if (exportTo is not null && cfg.Model.Source != "compact") throw new UsageException($"--export: the config's model.source is '{cfg.Model.Source}'; only 'compact' models are exported as one file");
            var result = await Task.Run(() =>
            {
                using var trainer = new Trainer(cfg, options);
                if (resumeFrom is not null) trainer.Resume(resumeFrom);
                var clock = Stopwatch.StartNew();
                var r = trainer.Run(cfg.Steps, token);
                if (exportTo is not null && !r.Cancelled) trainer.ExportCompact(exportTo, storage);
                long peakMb = Process.GetCurrentProcess().PeakWorkingSet64 >> 20;
                console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{(r.Cancelled ? "stopped" : "done")} at step {r.LastStep} ({r.LastStep - r.FirstStep} step(s), {r.SecondsPerStep:F2} s/step, {clock.Elapsed.TotalSeconds:F1} s, peak memory {peakMb} MB); checkpoint {r.Checkpoint ?? "none"}"));
                return r;
            }, CancellationToken.None).ConfigureAwait(false);
            return result.Cancelled ? ExitCodes.Cancelled : ExitCodes.Ok;
        }));
        return command;
    }
}
