using System.Diagnostics;
using System.Globalization;
using System.Text;
using Dloral.Training;

namespace Dloral.Bench;

/// <summary>
/// Seconds per training step of configs/tiny.json (golden-size DLoRAL, all losses, CSD in the enhancement stage) on
/// synthetic textured photos, per stage, and the process's peak memory. Args: [crop=64] [steps=20] [threads].
/// </summary>
internal static class TrainStepBench
{
    public static int Run(string[] args)
    {
        int crop = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 64;
        int steps = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 20;
        int? threads = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : null;
        TorchRuntime.Initialize(threads);
        var data = Directory.CreateTempSubdirectory("dloral-bench-photos-").FullName;
        var output = Directory.CreateTempSubdirectory("dloral-bench-train-").FullName;
        try
        {
            int size = Math.Max(160, crop * 2);
            for (int i = 0; i < 4; i++)
            {
                int k = 5 + 3 * i;
                BenchUtil.Run("ffmpeg", ["-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i",
                    $"nullsrc=s={size}x{size},geq=r='128+60*sin(X/{k})*cos(Y/{k + 4})':g='128+90*sin(X/{k + 6}+Y/{k})':b='128+90*cos((X-2*Y)/{k + 2})',format=rgb24",
                    "-frames:v", "1", Path.Combine(data, $"p{i}.png")]);
            }
            var config = TrainingConfig.Load(Path.Combine(BenchUtil.RepoRoot, "configs", "tiny.json"));
            config.Data.Crop = crop;
            config.ValidateEvery = 0;
            config.CheckpointEvery = 0;
            config.LogEvery = 0;
            var load = Stopwatch.StartNew();
            using var trainer = new Trainer(config, new TrainerOptions { Output = output, DataFolder = data });
            double loadSeconds = load.Elapsed.TotalSeconds;
            var run = trainer.Run(steps);
            var byStage = run.Steps.Skip(1).GroupBy(s => s.Stage) // the first step warms up
                .ToDictionary(g => g.Key, g => (Mean: g.Average(s => s.Seconds), Count: g.Count()));
            long peakMb = Process.GetCurrentProcess().PeakWorkingSet64 >> 20;
            var md = new StringBuilder();
            md.AppendLine(CultureInfo.InvariantCulture, $"# train-step: configs/tiny.json, crop {crop}, {steps} steps, threads {threads?.ToString(CultureInfo.InvariantCulture) ?? "default"}");
            md.AppendLine();
            md.AppendLine("| stage | steps | s/step |");
            md.AppendLine("| --- | --- | --- |");
            foreach (var (stage, v) in byStage) md.AppendLine(CultureInfo.InvariantCulture, $"| {stage} | {v.Count} | {v.Mean:F3} |");
            md.AppendLine();
            md.AppendLine(CultureInfo.InvariantCulture, $"model + losses load {loadSeconds:F1} s; mean {run.SecondsPerStep:F3} s/step; peak working set {peakMb} MB; load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
            BenchUtil.WriteResults("train-step", new
            {
                crop, steps, threads, load_seconds = loadSeconds, seconds_per_step = run.SecondsPerStep,
                by_stage = byStage.ToDictionary(kv => kv.Key, kv => kv.Value.Mean), peak_working_set_mb = peakMb,
            }, md.ToString());
            return 0;
        }
        finally
        {
            Directory.Delete(data, true);
            Directory.Delete(output, true);
        }
    }
}
