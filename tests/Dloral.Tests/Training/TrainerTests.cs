using Dloral.Temporal;
using System.Text.Json;
using Dloral.Pipeline.Compact;
using Dloral.Tests.Cli;
using Dloral.Tests.Support;
using Dloral.Training;
using Dloral.Training.Losses;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Training;

/// <summary>A few textured photos (ffmpeg geq patterns) shared by the trainer tests.</summary>
public sealed class TrainingPhotos : IDisposable
{
    public TrainingPhotos()
    {
        for (int i = 0; i < 4; i++) Media.Image($"photo{i}.png", ClipDatasetTests.Texture(160, 160, 5 + 3 * i));
    }

    public MediaFolder Media { get; } = new();

    public string Dir => Media.Dir;

    public void Dispose() => Media.Dispose();
}

public class TrainerTests(TrainingPhotos photos, ITestOutputHelper output) : IClassFixture<TrainingPhotos>
{
    private static TrainingConfig Tiny(string data, string output, Action<TrainingConfig>? edit = null) => TrainerTestConfig.Tiny(data, output, edit);

    private static string TempDir(string tag) => Directory.CreateTempSubdirectory($"dloral-train-{tag}-").FullName;

    private static Dictionary<string, Tensor> Snapshot(TrainingModel model) =>
        model.All.ToDictionary(p => p.Name, p => p.Param.detach().clone());

    [Fact]
    public void Thirty_steps_reduce_the_training_loss()
    {
        var dir = TempDir("loss");
        try
        {
            var config = Tiny(photos.Dir, dir, c =>
            {
                c.Optimizer.LearningRate = 1e-3;
                c.Losses.CsdTeacher = null;
                c.Schedule = new StageScheduleOptions { ConsistencyEnd = 100, EnhancementEnd = 200 };
            });
            using var trainer = new Trainer(config);
            var clip = trainer.ValidationClip();
            var before = trainer.Evaluate(clip);
            var run = trainer.Run(30);
            var after = trainer.Evaluate(clip, new StageSchedule(config.Schedule).At(0));
            Assert.Equal(30, run.Steps.Count);
            Assert.All(run.Steps, s => Assert.True(double.IsFinite(s.Loss)));
            double first = run.Steps.Take(5).Average(s => s.Loss), last = run.Steps.TakeLast(5).Average(s => s.Loss);
            Assert.True(after.Total < before.Total, $"held-out loss {before.Total} -> {after.Total}");
            Assert.True(last < first, $"training loss first 5 steps {first}, last 5 {last}");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void The_chroma_weight_reaches_the_pixel_loss_and_its_baseline()
    {
        var dir = TempDir("chroma");
        try
        {
            LossTerms Terms(double w)
            {
                using var trainer = new Trainer(Tiny(photos.Dir, dir, c => { c.Losses.CsdTeacher = null; c.Losses.L2ChromaWeight = w; }));
                return trainer.Evaluate(trainer.ValidationClip());
            }
            var plain = Terms(1.0);
            var luma = Terms(0.25);
            output.WriteLine($"w=1: L2 {plain.L2:E4} baseline {plain.Baseline:E4}; w=0.25: L2 {luma.L2:E4} baseline {luma.Baseline:E4}");
            // Same weights and clip, so only the weighting differs: the chroma part shrinks to a quarter, the luma part stays.
            Assert.InRange(luma.L2 / plain.L2, 0.25 + 1e-3, 1 - 1e-3);
            Assert.InRange(luma.Baseline / plain.Baseline, 0.25 + 1e-3, 1 - 1e-3);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Each_stage_trains_its_parameters_and_leaves_the_others_bitwise_unchanged()
    {
        var dir = TempDir("stages");
        try
        {
            // step 0 = consistency, step 1 = enhancement (CSD on), step 2 = consistency again.
            var config = Tiny(photos.Dir, dir, c => c.Schedule = new StageScheduleOptions { ConsistencyEnd = 0, EnhancementEnd = 1, SecondConsistencySteps = 5, TransitionSteps = 1 });
            using var trainer = new Trainer(config);
            var m = trainer.Model;
            foreach (var stage in new[] { TrainingStage.Consistency, TrainingStage.Enhancement, TrainingStage.Consistency })
            {
                var (weights, terms) = trainer.AccumulateGradients();
                Assert.Equal(stage, weights.Stage);
                if (stage == TrainingStage.Enhancement) Assert.True(terms.Csd > 0, "CSD must be active in the enhancement stage");
                var trainable = m.TrainableIn(stage).Select(p => p.Name).ToHashSet();
                var groups = stage == TrainingStage.Consistency ? new[] { m.Consistency, m.Cfr, m.ConvIn } : new[] { m.Quality, m.ConvIn };
                foreach (var group in groups)
                {
                    Assert.All(group, p => Assert.True(p.Param.grad is not null, $"{p.Name} has no gradient in {stage}"));
                    double norm = group.Sum(p => p.Param.grad!.abs().sum().item<float>());
                    Assert.True(norm > 0, $"group of {group[0].Name} has zero gradient in {stage}");
                }
                Assert.All(m.All.Where(p => !trainable.Contains(p.Name)), p => Assert.True(p.Param.grad is null, $"frozen {p.Name} got a gradient in {stage}"));
                Assert.Contains(m.All, p => p.Name.StartsWith("cfr.spynet.", StringComparison.Ordinal) && !trainable.Contains(p.Name));

                var before = Snapshot(m);
                trainer.ApplyUpdate();
                int changed = 0;
                foreach (var p in m.All)
                {
                    bool equal = before[p.Name].eq(p.Param).all().item<bool>();
                    if (!trainable.Contains(p.Name)) Assert.True(equal, $"frozen {p.Name} changed in {stage}");
                    else if (!equal) changed++;
                }
                Assert.True(changed > trainable.Count * 0.9, $"only {changed} of {trainable.Count} trainable parameters moved in {stage}");
                foreach (var t in before.Values) t.Dispose();
            }
            // The consistency parameters kept their AdamW state across the enhancement step: 2 updates each.
            Assert.Equal(2, trainer.Optimizer.StepsOf(m.Consistency[0].Name));
            Assert.Equal(1, trainer.Optimizer.StepsOf(m.Quality[0].Name));
            Assert.Equal(3, trainer.Optimizer.StepsOf(m.ConvIn[0].Name));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Resuming_10_plus_10_steps_equals_20_straight_steps()
    {
        var straightDir = TempDir("straight");
        var resumedDir = TempDir("resumed");
        try
        {
            // Crosses consistency -> transition -> enhancement (CSD) inside the 20 steps; accumulation 2.
            void Edit(TrainingConfig c)
            {
                c.Schedule = new StageScheduleOptions { ConsistencyEnd = 7, EnhancementEnd = 30, TransitionSteps = 4 };
                c.Optimizer.GradientAccumulation = 2;
                c.Optimizer.LearningRate = 1e-3;
                c.Losses.Perceptual = "none";
            }
            IReadOnlyList<StepRecord> straight;
            Dictionary<string, Tensor> straightWeights;
            using (var t = new Trainer(Tiny(photos.Dir, straightDir, Edit)))
            {
                straight = t.Run(20).Steps;
                straightWeights = t.Model.Checkpointed.ToDictionary(p => p.Name, p => p.Param.detach().clone());
            }
            using (var t = new Trainer(Tiny(photos.Dir, resumedDir, Edit)))
            {
                var r = t.Run(10);
                Assert.NotNull(r.Checkpoint);
            }
            using (var t = new Trainer(Tiny(photos.Dir, resumedDir, Edit)))
            {
                var state = t.Resume(resumedDir);
                Assert.Equal(10, state.Step);
                var second = t.Run(20).Steps;
                Assert.Equal(10, second.Count);
                for (int i = 0; i < 10; i++)
                {
                    Assert.Equal(straight[10 + i].Step, second[i].Step);
                    Assert.Equal(straight[10 + i].Loss, second[i].Loss, 5);
                    Assert.Equal(straight[10 + i].LossCsd, second[i].LossCsd, 5);
                }
                Assert.Contains(second, s => s.LossCsd > 0);
                foreach (var p in t.Model.Checkpointed) TensorAssert.Close(straightWeights[p.Name], p.Param, 1e-6, 1e-5, p.Name);
            }
            foreach (var w in straightWeights.Values) w.Dispose();
            // The resumed run appended to the same log.
            var lines = File.ReadAllLines(Path.Combine(resumedDir, "train_log.jsonl"));
            Assert.Equal(20, lines.Count(l => l.Contains("\"type\":\"step\"", StringComparison.Ordinal)));
        }
        finally
        {
            Directory.Delete(straightDir, true);
            Directory.Delete(resumedDir, true);
        }
    }

    [Fact]
    public void A_checkpoint_write_that_fails_midway_leaves_the_previous_checkpoints_intact()
    {
        var dir = TempDir("ckpt");
        try
        {
            bool fail = false;
            var config = Tiny(photos.Dir, dir, c => { c.Losses.Perceptual = "none"; c.Losses.CsdTeacher = null; });
            using var trainer = new Trainer(config, new TrainerOptions
            {
                AfterCheckpointFile = path =>
                {
                    if (fail && path.EndsWith(TrainingCheckpoint.OptimizerFile, StringComparison.Ordinal)) throw new IOException("simulated disk failure mid-checkpoint");
                },
            });
            for (int i = 0; i < 3; i++)
            {
                trainer.TrainStep();
                trainer.SaveCheckpoint();
            }
            var kept = TrainingCheckpoint.List(trainer.CheckpointDirectory);
            Assert.Equal(new[] { TrainingCheckpoint.FolderName(2), TrainingCheckpoint.FolderName(3) }, kept.Select(Path.GetFileName));
            var lastGood = kept[^1];
            var bytesBefore = Directory.GetFiles(lastGood).OrderBy(f => f, StringComparer.Ordinal).Select(File.ReadAllBytes).ToList();

            trainer.TrainStep();
            fail = true;
            Assert.Throws<IOException>(() => trainer.SaveCheckpoint());

            Assert.Equal(kept, TrainingCheckpoint.List(trainer.CheckpointDirectory));
            Assert.Equal(new[] { TrainingCheckpoint.FolderName(2), TrainingCheckpoint.FolderName(3) }, CliRunner.Listing(trainer.CheckpointDirectory));
            Assert.Equal(bytesBefore, Directory.GetFiles(lastGood).OrderBy(f => f, StringComparer.Ordinal).Select(File.ReadAllBytes).ToList());
            Assert.Equal(lastGood, TrainingCheckpoint.Find(dir));

            // ... and it still restores.
            using var resumed = new Trainer(config);
            Assert.Equal(3, resumed.Resume(dir).Step);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Validation_writes_metrics_and_a_sample_image()
    {
        var dir = TempDir("val");
        try
        {
            using var trainer = new Trainer(Tiny(photos.Dir, dir, c => c.Losses.CsdTeacher = null));
            var v = trainer.Validate();
            Assert.InRange(v.Psnr, 5, 60);
            Assert.InRange(v.PsnrBicubic, 5, 60);
            Assert.NotEqual(v.PsnrBicubic, v.Psnr); // the tiny SD model is no identity
            Assert.InRange(v.Ssim, -1, 1);
            Assert.True(v.WarpingError >= 0 && double.IsFinite(v.WarpingError));
            Assert.True(File.Exists(v.Sample));
            var log = File.ReadAllText(Path.Combine(dir, "train_log.jsonl"));
            Assert.Contains("\"type\":\"validation\"", log, StringComparison.Ordinal);
            Assert.Contains("\"psnr_bicubic\":", log, StringComparison.Ordinal);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Bfloat16_training_runs_with_float32_master_weights()
    {
        var dir = TempDir("bf16");
        try
        {
            using var trainer = new Trainer(Tiny(photos.Dir, dir, c => { c.Model.Dtype = "bfloat16"; c.Losses.Perceptual = "none"; }));
            Assert.Equal(ScalarType.BFloat16, trainer.Model.ConvIn[0].Param.dtype);
            var r = trainer.Run(2);
            Assert.All(r.Steps, s => Assert.True(double.IsFinite(s.Loss)));
            var (tensors, _) = trainer.Optimizer.Export();
            Assert.Contains(tensors, kv => kv.Key.EndsWith(".master", StringComparison.Ordinal) && kv.Value.dtype == ScalarType.Float32);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Train_command_runs_the_tiny_config_end_to_end()
    {
        var outDir = TempDir("cli");
        try
        {
            var config = Path.Combine(GoldenData.RepoRoot, "configs", "tiny.json");
            var r = CliRunner.Run("train", "--config", config, "--steps", "5", "--data", photos.Dir, "--out", outDir);
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Contains("done at step 5", r.Stderr, StringComparison.Ordinal);
            var log = File.ReadAllLines(Path.Combine(outDir, "train_log.jsonl"));
            Assert.Equal(5, log.Count(l => l.Contains("\"type\":\"step\"", StringComparison.Ordinal)));
            Assert.NotNull(TrainingCheckpoint.Find(outDir));
            Assert.Equal(5, TrainingCheckpoint.ReadState(TrainingCheckpoint.Find(outDir)!).Step);

            var resumed = CliRunner.Run("train", "--config", config, "--steps", "6", "--data", photos.Dir, "--out", outDir, "--resume", outDir);
            Assert.True(resumed.ExitCode == 0, resumed.ToString());
            Assert.Contains("resumed from", resumed.Stderr, StringComparison.Ordinal);
            Assert.Equal(6, TrainingCheckpoint.ReadState(TrainingCheckpoint.Find(outDir)!).Step);
        }
        finally { Directory.Delete(outDir, true); }
    }

    [Fact]
    public void Train_command_grows_a_compact_model_resumes_it_and_exports_it_in_float16()
    {
        var dir = TempDir("cli-deepen");
        try
        {
            string shipped = GoldenData.ShippedCompactWeights;
            string run = Path.Combine(dir, "run"), config = Path.Combine(dir, "deepen.json");
            File.WriteAllText(config, $$"""
                {
                  "model": { "source": "compact", "compact": {{JsonSerializer.Serialize(shipped)}}, "layers_per_block": 2, "block_out_channels": [64, 96, 128] },
                  "data": { "crop": 64, "degradation": "light", "video_compression": false },
                  "losses": { "perceptual": "none" },
                  "schedule": { "base_steps": 3, "flow_steps": 0, "consistency_end": 1, "enhancement_end": 4, "second_consistency_steps": 2,
                                "transition_steps": 1, "lambda_lpips": 0 },
                  "steps": 2, "checkpoint_every": 0, "validate_every": 0, "output": "run"
                }
                """);
            string half = Path.Combine(dir, "half.safetensors"), full = Path.Combine(dir, "full.safetensors");
            var r = CliRunner.Run("train", "--config", config, "--data", photos.Dir, "--export", half, "--export-dtype", "float16");
            Assert.True(r.ExitCode == 0, r.ToString());
            // The run's checkpoint holds the grown (widened) model: resuming it (the config grows the shipped file again,
            // then loads the checkpoint) and exporting in float32 gives the same weights up to float16 rounding.
            var again = CliRunner.Run("train", "--config", config, "--data", photos.Dir, "--resume", run, "--steps", "2", "--export", full);
            Assert.True(again.ExitCode == 0, again.ToString());
            Assert.Contains("resumed from", again.Stderr, StringComparison.Ordinal);
            using var h = CompactDloral.Load(half);
            using var f = CompactDloral.Load(full);
            Assert.All(h.Config.Unet.LayersPerBlock, l => Assert.Equal(2L, l));
            Assert.Equal([64L, 96, 128], h.Config.Unet.BlockOutChannels);
            var fw = f.NamedWeights().ToDictionary(kv => kv.Key, kv => kv.Value);
            foreach (var (name, t) in h.NamedWeights())
            {
                Assert.Equal(ScalarType.Float32, t.dtype); // stored as float16, loaded into float32
                TensorAssert.Close(fw[name], t, 1e-4, 1e-3, name);
            }
            Assert.InRange(new FileInfo(half).Length, new FileInfo(full).Length * 45 / 100, new FileInfo(full).Length * 55 / 100);
            Assert.True(new FileInfo(full).Length > new FileInfo(shipped).Length * 5 / 4, "the deepened model is larger than the shipped one");

            var bad = CliRunner.Run("train", "--config", config, "--data", photos.Dir, "--steps", "0", "--resume", run, "--export", half, "--export-dtype", "int8");
            Assert.Equal(2, bad.ExitCode);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Train_command_switches_a_compact_model_to_recurrent_Lucas_Kanade_CFR_trains_the_video_path_and_exports_the_choice()
    {
        var dir = TempDir("cli-lk");
        try
        {
            // The seeded fresh model of models/compact (compact.json: SPyNet, latent warp, previous input frame).
            string folder = Path.Combine(GoldenData.RepoRoot, "models", "compact");
            string config = Path.Combine(dir, "lk.json"), exported = Path.Combine(dir, "lk.safetensors");
            File.WriteAllText(config, $$"""
                {
                  "model": { "source": "compact", "compact": {{JsonSerializer.Serialize(folder)}}, "cfr_flow": "lucas_kanade",
                             "cfr_warp": "frames", "previous": "output" },
                  "data": { "crop": 64, "degradation": "light", "video_compression": false },
                  "losses": { "perceptual": "none" },
                  "schedule": { "base_steps": 2, "base_previous_frame": true, "flow_steps": 0, "consistency_end": 1, "enhancement_end": 2,
                                "second_consistency_steps": 1, "transition_steps": 1, "lambda_lpips": 0 },
                  "steps": 4, "checkpoint_every": 0, "validate_every": 0, "output": "run"
                }
                """);
            var r = CliRunner.Run("train", "--config", config, "--data", photos.Dir, "--export", exported);
            Assert.True(r.ExitCode == 0, r.ToString());
            using var model = CompactDloral.Load(exported);
            Assert.Equal(CrossFrameFlow.LucasKanade, model.Config.Cfr.Flow);
            Assert.True(model.Config.Cfr.WarpFrames);
            Assert.True(model.Model.RecurrentPrevious);
            using var before = CompactDloral.Build(folder);
            Assert.Equal(CrossFrameFlow.SpyNet, before.Config.Cfr.Flow);
            Assert.False(before.Model.RecurrentPrevious);
            var trained = model.NamedWeights().ToDictionary(kv => kv.Key, kv => kv.Value);
            // Four steps moved the UNet (base on the recurrent video path, then the adapters).
            Assert.Contains(before.NamedWeights(), kv => kv.Key.StartsWith("unet.", StringComparison.Ordinal) && !kv.Value.allclose(trained[kv.Key], rtol: 0, atol: 0));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_recurrent_model_on_longer_clips_warms_up_on_the_earlier_frames_and_takes_its_losses_on_the_last_three()
    {
        var dir = TempDir("rec6");
        try
        {
            var config = new TrainingConfig { BaseDirectory = dir, Output = dir, Steps = 1, CheckpointEvery = 0, ValidateEvery = 0, LogEvery = 0 };
            config.Model.Source = "compact";
            config.Model.Compact = Path.Combine(GoldenData.RepoRoot, "models", "compact"); // seeded fresh model
            config.Model.CfrFlow = "lucas_kanade";
            config.Model.CfrWarp = "frames";
            config.Model.Previous = "output";
            config.Data.Folder = photos.Dir;
            config.Data.Crop = 64;
            config.Data.Frames = 6;
            config.Data.Degradation = "light";
            config.Data.VideoCompression = false;
            config.Losses.Perceptual = "none";
            config.Schedule = new StageScheduleOptions { BaseSteps = 0, FlowSteps = 0, ConsistencyEnd = 10, EnhancementEnd = 20 };
            config.Validate();
            using var trainer = new Trainer(config);
            var model = trainer.Model.Model;
            var compact = trainer.Model.Compact!;
            // A model that changes its input (the untrained one is the identity, which would hide the recurrence).
            CompactPerturbation.PerturbConvOut(model.Unet, 11);
            var clip = trainer.ValidationClip();
            Assert.Equal(6, clip.Hr.shape[0]);
            var weights = new StageSchedule(config.Schedule).At(0);
            Assert.Equal(TrainingStage.Consistency, weights.Stage);
            var terms = trainer.Evaluate(clip, weights);

            // By hand, as video inference runs a recurrent model: frame 0 restored alone, then each window sees the
            // restored frame before it; the losses are those of windows (3,4) and (4,5).
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            long h = clip.Hr.shape[2], w = clip.Hr.shape[3];
            var src = Dloral.Pipeline.BicubicInput.Upscale(clip.Lr!, h, w) * 2 - 1;
            var tgt = clip.Hr.to_type(ScalarType.Float32) * 2 - 1;
            var latents = model.EncodeLatents(src);
            Tensor Window(int i, Tensor previous)
            {
                var frames = src.narrow(0, i, 2).unsqueeze(0);
                var lat = stack([previous, latents.narrow(0, i + 1, 1)], 1);
                return model.DenoiseWindow(frames, lat, compact.UncertaintyOf(frames), compact.PromptEmbeds);
            }
            var restored = model.DenoiseSingleFrame(latents.narrow(0, 0, 1), compact.PromptEmbeds);
            double expected = 0;
            for (int i = 0; i < 5; i++)
            {
                restored = Window(i, restored);
                if (i >= 3) expected += ReconstructionLoss.L2(model.DecodeLatents(restored), tgt.narrow(0, i + 1, 1)).item<float>();
            }
            // Without the warm-up (frame 3 restored alone, as a 3-frame clip would start) the loss is another one.
            var cold = Window(3, model.DenoiseSingleFrame(latents.narrow(0, 3, 1), compact.PromptEmbeds));
            double coldLoss = ReconstructionLoss.L2(model.DecodeLatents(cold), tgt.narrow(0, 4, 1)).item<float>()
                + ReconstructionLoss.L2(model.DecodeLatents(Window(4, cold)), tgt.narrow(0, 5, 1)).item<float>();
            output.WriteLine($"L2 trainer {terms.L2:E6}, by hand {expected:E6}, without warm-up {coldLoss:E6}");
            Assert.Equal(expected, terms.L2, 1e-5 * expected);
            Assert.True(Math.Abs(coldLoss - expected) > 1e-3 * expected, $"warm-up changed nothing: {coldLoss} vs {expected}");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Train_command_names_a_missing_degradation_file_as_bad_input()
    {
        // A config's relative paths resolve from its own folder: copied elsewhere, compact-continue's degradation file is
        // not there. That is the user's file missing (exit 2, the path named), not an internal error with a stack trace.
        var dir = TempDir("cli-missing");
        try
        {
            var config = Path.Combine(dir, "moved.json");
            File.Copy(Path.Combine(GoldenData.RepoRoot, "configs", "compact-continue.json"), config);
            var r = CliRunner.Run("train", "--config", config, "--steps", "1", "--data", photos.Dir, "--out", Path.Combine(dir, "run"));
            Assert.Equal(2, r.ExitCode);
            Assert.Contains(Path.Combine(dir, "degradations", "compact.json"), r.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("internal error", r.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
        }
        finally { Directory.Delete(dir, true); }
    }
}

public class TrainingControlTests(TrainingPhotos photos) : IClassFixture<TrainingPhotos>
{
    [Fact]
    public void Cancellation_stops_after_the_current_step_and_checkpoints()
    {
        var dir = Directory.CreateTempSubdirectory("dloral-train-cancel-").FullName;
        try
        {
            using var cts = new CancellationTokenSource();
            var config = TrainerTestConfig.Tiny(photos.Dir, dir, c => { c.Losses.Perceptual = "none"; c.Losses.CsdTeacher = null; });
            using var trainer = new Trainer(config, new TrainerOptions { OnStep = r => { if (r.Step == 2) cts.Cancel(); } });
            // A step cancelled before its update is abandoned: no step, no gradients left behind.
            Assert.ThrowsAny<OperationCanceledException>(() => trainer.TrainStep(new CancellationToken(canceled: true)));
            Assert.Equal(0, trainer.Step);
            Assert.All(trainer.Model.All, p => Assert.Null(p.Param.grad));
            var result = trainer.Run(50, cts.Token);
            Assert.True(result.Cancelled);
            Assert.Equal(2, result.LastStep);
            Assert.Equal(2, TrainingCheckpoint.ReadState(TrainingCheckpoint.Find(dir)!).Step);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_from_scratch_model_trains_its_whole_unet()
    {
        var dir = Directory.CreateTempSubdirectory("dloral-train-scratch-").FullName;
        try
        {
            var config = TrainerTestConfig.Tiny(photos.Dir, dir, c => { c.Model.Source = "scratch"; c.Model.Checkpoint = null; c.Losses.Perceptual = "none"; c.Losses.CsdTeacher = null; });
            using var trainer = new Trainer(config);
            var m = trainer.Model;
            Assert.NotEmpty(m.Full);
            var convOut = m.Full.First(p => p.Name.StartsWith("unet.conv_out.", StringComparison.Ordinal) && p.Name.EndsWith(".weight", StringComparison.Ordinal));
            using var before = convOut.Param.detach().clone();
            trainer.TrainStep();
            Assert.False(before.eq(convOut.Param).all().item<bool>(), $"the base UNet weight {convOut.Name} must train for a from-scratch model");
            var ckpt = trainer.SaveCheckpoint();
            using var weights = Dloral.Checkpoints.SafeTensorsFile.Open(Path.Combine(ckpt, TrainingCheckpoint.WeightsFile));
            Assert.True(weights.Contains(convOut.Name));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_folder_of_videos_trains_on_consecutive_frames()
    {
        using var videos = new MediaFolder();
        videos.Video("clip.mp4", "testsrc2=size=160x120:rate=25", 12);
        var dir = Directory.CreateTempSubdirectory("dloral-train-video-").FullName;
        try
        {
            var config = TrainerTestConfig.Tiny(videos.Dir, dir, c => { c.Data.Kind = "videos"; c.Losses.Perceptual = "none"; c.Losses.CsdTeacher = null; });
            using var trainer = new Trainer(config);
            var r = trainer.Run(2);
            Assert.Equal(2, r.Steps.Count);
            Assert.All(r.Steps, s => Assert.True(double.IsFinite(s.Loss) && s.LossL2 > 0));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_trained_checkpoint_applies_to_an_inference_model()
    {
        var dir = Directory.CreateTempSubdirectory("dloral-train-apply-").FullName;
        try
        {
            var config = TrainerTestConfig.Tiny(photos.Dir, dir, c => { c.Losses.Perceptual = "none"; c.Losses.CsdTeacher = null; c.Optimizer.LearningRate = 1e-3; });
            using var trainer = new Trainer(config);
            var checkpoint = trainer.Run(2).Checkpoint!;
            using var inference = Dloral.Pipeline.DloralModelLoader.Load(GoldenData.PathOf("tiny_sd"), GoldenData.PathOf("checkpoint", "model.pkl"));
            inference.Cfr.EnforceReferenceMinimumSize = false;
            using var frames = rand([1, 2, 3, 64, 64], generator: new Generator(9)) * 2 - 1;
            using var unc = zeros([1, 1, 1, 8, 8]);
            using var prompt = zeros(1, 77, 32);
            using var before = inference.Step(frames, unc, prompt);
            Dloral.Training.TrainingCheckpoint.ApplyTo(inference, dir);
            using var after = inference.Step(frames, unc, prompt);
            using var trained = trainer.Model.Model.Step(frames, unc, prompt);
            TensorAssert.Close(trained.XDenoised, after.XDenoised, 1e-6, 1e-5, "inference model with the trained checkpoint");
            Assert.True(TensorAssert.MaxAbsDiff(before.XDenoised, after.XDenoised) > 1e-4, "the checkpoint changed nothing");
            Assert.Equal(checkpoint, TrainingCheckpoint.Find(dir));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_corrupt_photo_is_skipped_with_a_warning()
    {
        using var media = new MediaFolder();
        media.Image("good.png", ClipDatasetTests.Texture(160, 160, 7));
        File.WriteAllBytes(media.Path("broken.png"), [0x89, 0x50, 0x4E, 0x47, 1, 2, 3, 4, 5]);
        var dir = Directory.CreateTempSubdirectory("dloral-train-corrupt-").FullName;
        try
        {
            var console = new StringWriter();
            var config = TrainerTestConfig.Tiny(media.Dir, dir, c => { c.Losses.Perceptual = "none"; c.Losses.CsdTeacher = null; c.Data.ValidationFraction = 0; });
            using var trainer = new Trainer(config, new TrainerOptions { Console = console });
            var r = trainer.Run(3);
            Assert.Equal(3, r.LastStep);
            Assert.Contains("warning: skipped image", console.ToString(), StringComparison.Ordinal);
            Assert.Contains("broken.png", console.ToString(), StringComparison.Ordinal);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void The_configs_in_the_repository_are_valid()
    {
        var files = Directory.GetFiles(Path.Combine(GoldenData.RepoRoot, "configs"), "*.json");
        Assert.Contains(files, f => Path.GetFileName(f) == "tiny.json");
        foreach (var f in files)
        {
            var c = TrainingConfig.Load(f);
            Assert.Equal(Path.GetDirectoryName(f), c.BaseDirectory);
        }
        var tiny = TrainingConfig.Load(Path.Combine(GoldenData.RepoRoot, "configs", "tiny.json"));
        Assert.True(File.Exists(tiny.ResolvePath(tiny.Model.Checkpoint!)), tiny.ResolvePath(tiny.Model.Checkpoint!));
        Assert.Throws<InvalidDataException>(() => TrainingConfig.Parse("""{ "steps": 3, "no_such_key": 1 }"""));
        Assert.Throws<InvalidDataException>(() => TrainingConfig.Parse("""{ "data": { "crop": 60 } }"""));
        var flow = Assert.Throws<InvalidDataException>(() => TrainingConfig.Parse("""{ "model": { "source": "compact", "compact": "x", "cfr_flow": "farneback" } }"""));
        Assert.Contains("cfr_flow 'farneback'", flow.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidDataException>(() => TrainingConfig.Parse("""{ "model": { "cfr_flow": "lucas_kanade" } }""")); // not a compact model
        Assert.Throws<InvalidDataException>(() => TrainingConfig.Parse(
            """{ "model": { "source": "compact", "compact": "x", "cfr_flow": "lucas_kanade" }, "schedule": { "flow_steps": 10 } }"""));
        var frames = Assert.Throws<InvalidDataException>(() => TrainingConfig.Parse("""{ "data": { "frames": 6 } }""")); // not recurrent
        Assert.Contains("model.previous", frames.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidDataException>(() => TrainingConfig.Parse("""{ "data": { "frames": 2 } }"""));
        Assert.Equal(6, TrainingConfig.Parse("""{ "model": { "source": "compact", "compact": "x", "previous": "output" }, "data": { "frames": 6 } }""").Data.Frames);
        var widen = Assert.Throws<InvalidDataException>(() => TrainingConfig.Parse("""{ "model": { "block_out_channels": [64, 96, 128] } }"""));
        Assert.Contains("needs source 'compact'", widen.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidDataException>(() => TrainingConfig.Parse("""{ "model": { "source": "compact", "compact": "x", "block_out_channels": [64, 0, 128] } }"""));
        Assert.Equal([64L, 96, 128], TrainingConfig.Parse("""{ "model": { "source": "compact", "compact": "x", "block_out_channels": [64, 96, 128] } }""").Model.BlockOutChannels!);
    }
}

internal static class TrainerTestConfig
{
    public static TrainingConfig Tiny(string data, string output, Action<TrainingConfig>? edit = null)
    {
        var c = new TrainingConfig { BaseDirectory = output, Output = output, Steps = 10, CheckpointEvery = 0, ValidateEvery = 0, LogEvery = 0 };
        c.Model.Diffusers = GoldenData.PathOf("tiny_sd");
        c.Model.Checkpoint = GoldenData.PathOf("checkpoint", "model.pkl");
        c.Model.EnforceReferenceMinimumSize = false;
        c.Data.Folder = data;
        c.Data.Crop = 64;
        c.Data.Degradation = "light";
        c.Data.VideoCompression = false;
        c.Losses.CsdTeacher = GoldenData.PathOf("tiny_sd");
        edit?.Invoke(c);
        c.Validate();
        return c;
    }
}
