using Dloral.Pipeline.Compact;
using Dloral.Tests.Support;
using Dloral.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Tests.Training;

/// <summary>
/// The trainer on the shipped compact model (source "compact"): base (single-frame SR) and flow (SPyNet) stages before
/// the reference's schedule, which parameters train in each, resume equality across the stage boundaries, export.
/// </summary>
public class CompactTrainingTests(TrainingPhotos photos) : IClassFixture<TrainingPhotos>
{
    private static string TempDir(string tag) => Directory.CreateTempSubdirectory($"dloral-ctrain-{tag}-").FullName;

    /// <summary>models/compact at 64² crops: base 0–1, flow 2–3, then consistency 4–5, → enhancement 6, enhancement 7–….</summary>
    private static TrainingConfig Compact(string data, string output, Action<TrainingConfig>? edit = null)
    {
        var c = new TrainingConfig { BaseDirectory = output, Output = output, Steps = 8, CheckpointEvery = 0, ValidateEvery = 0, LogEvery = 0 };
        c.Model.Source = "compact";
        c.Model.Compact = CompactConfigFiles.ShippedFolder;
        c.Data.Folder = data;
        c.Data.Crop = 64;
        c.Data.Degradation = "light";
        c.Data.VideoCompression = false;
        c.Losses.Perceptual = "none";
        c.Losses.CsdTeacher = null;
        c.Optimizer.LearningRate = 1e-3;
        c.Optimizer.WeightDecay = 0; // so a zero gradient means an unchanged weight
        c.Schedule = new StageScheduleOptions { BaseSteps = 2, FlowSteps = 2, ConsistencyEnd = 1, EnhancementEnd = 4, SecondConsistencySteps = 2, TransitionSteps = 1, LambdaLpips = 0 };
        edit?.Invoke(c);
        c.Validate();
        return c;
    }

    private static Dictionary<string, Tensor> Snapshot(TrainingModel model) => model.All.ToDictionary(p => p.Name, p => p.Param.detach().clone());

    /// <summary>A copy of models/compact's config with the pixel-unshuffle factor set (latent channels 3·f²).</summary>
    private static string ModelFolderWithFactor(int factor, string dir)
    {
        var (compactJson, unetJson) = CompactConfigFiles.WithFactor(factor);
        string folder = Directory.CreateDirectory(Path.Combine(dir, $"model-f{factor}")).FullName;
        File.WriteAllText(Path.Combine(folder, "compact.json"), compactJson);
        File.WriteAllText(Path.Combine(folder, "unet_config.json"), unetJson);
        return folder;
    }

    [Theory]
    [InlineData(4)]
    [InlineData(8)]
    public void Every_stage_and_validation_run_at_either_codec_factor(int factor)
    {
        // The uncertainty map is defined at 1/8: at f = 4 the CFR needs it on the 1/4 latent grid, in training steps and
        // in validation alike (a real f = 4 run once died in its first validation after the base stage).
        var dir = TempDir($"f{factor}");
        try
        {
            string folder = ModelFolderWithFactor(factor, dir);
            using var trainer = new Trainer(Compact(photos.Dir, Path.Combine(dir, "run"), c => c.Model.Compact = folder));
            Assert.Equal(factor, trainer.Model.Compact!.Config.CodecFactor);
            var stages = new List<TrainingStage>();
            for (int step = 0; step < 8; step++)
            {
                var record = trainer.TrainStep();
                stages.Add(Enum.Parse<TrainingStage>(record.Stage, ignoreCase: true));
                Assert.True(double.IsFinite(record.Loss), $"step {step} ({record.Stage}): loss {record.Loss}");
                if (step is 1 or 5)
                {
                    var v = trainer.Validate();
                    Assert.InRange(v.Psnr, 5, 60);
                }
            }
            Assert.Equal([TrainingStage.Base, TrainingStage.Flow, TrainingStage.Consistency, TrainingStage.Enhancement], stages.Distinct());
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void The_untrained_compact_model_is_the_identity_on_its_bicubic_input()
    {
        var dir = TempDir("identity");
        try
        {
            using var trainer = new Trainer(Compact(photos.Dir, dir));
            var (weights, terms) = trainer.AccumulateGradients();
            Assert.Equal(TrainingStage.Base, weights.Stage);
            // Zero-initialised conv_out + a lossless codec: the output is the bicubic frame, so its L2 is the baseline's.
            Assert.True(terms.Baseline > 1e-4, $"baseline {terms.Baseline}");
            Assert.Equal(terms.Baseline, terms.L2, terms.Baseline * 1e-4);
            trainer.Model.ZeroGrad();
            // Validation reports the bicubic input's PSNR beside the model's: equal for the identity.
            var v = trainer.Validate();
            Assert.InRange(v.PsnrBicubic, 10, 60);
            Assert.Equal(v.PsnrBicubic, v.Psnr, 0.01);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Base_flow_consistency_and_enhancement_train_their_parameters_only()
    {
        var dir = TempDir("stages");
        try
        {
            using var trainer = new Trainer(Compact(photos.Dir, dir));
            var m = trainer.Model;
            Assert.NotNull(m.Compact);
            Assert.Contains(m.Full, p => p.Name == CompactDloral.PromptName);
            Assert.NotEmpty(m.Flow);
            Assert.All(m.Flow, p => Assert.StartsWith("cfr.spynet.", p.Name));
            var expected = new[]
            {
                TrainingStage.Base, TrainingStage.Base, TrainingStage.Flow, TrainingStage.Flow,
                TrainingStage.Consistency, TrainingStage.Consistency, TrainingStage.Enhancement, TrainingStage.Enhancement,
            };
            for (int step = 0; step < expected.Length; step++)
            {
                var (weights, terms) = trainer.AccumulateGradients();
                var stage = expected[step];
                Assert.Equal(stage, weights.Stage);
                Assert.True(double.IsFinite(terms.Total), $"step {step}: loss {terms.Total}");
                var trainable = m.TrainableIn(stage).Select(p => p.Name).ToHashSet();
                IReadOnlyList<NamedParameter>[] groups = stage switch
                {
                    TrainingStage.Base => [m.Full, m.ConvIn],
                    TrainingStage.Flow => [m.Flow],
                    TrainingStage.Consistency => [m.Consistency, m.Cfr, m.ConvIn],
                    _ => [m.Quality, m.ConvIn],
                };
                Assert.Equal(groups.Sum(g => g.Count), trainable.Count);
                Assert.All(m.All.Where(p => !trainable.Contains(p.Name)), p => Assert.True(p.Param.grad is null, $"step {step}: frozen {p.Name} got a gradient in {stage}"));
                // Zero-initialised output layers (conv_out, SPyNet's last convs) pass no gradient back on a stage's first
                // step; from the second step on every group learns.
                if (step is 1 or 3 or 5 or 7)
                    foreach (var group in groups)
                    {
                        double norm = group.Sum(p => p.Param.grad is { } g ? g.abs().sum().item<float>() : 0);
                        Assert.True(norm > 0, $"step {step}: group of {group[0].Name} has zero gradient in {stage}");
                    }
                var before = Snapshot(m);
                trainer.ApplyUpdate();
                foreach (var p in m.All.Where(p => !trainable.Contains(p.Name)))
                    Assert.True(before[p.Name].eq(p.Param).all().item<bool>(), $"step {step}: frozen {p.Name} changed in {stage}");
                Assert.Contains(m.All, p => trainable.Contains(p.Name) && !before[p.Name].eq(p.Param).all().item<bool>());
                foreach (var t in before.Values) t.Dispose();
            }
            // The base weights trained in the base stage only (their moments were dropped when it handed over), conv_in
            // in every stage but flow.
            Assert.Equal(0, trainer.Optimizer.StepsOf(m.Full[0].Name));
            Assert.Equal(2, trainer.Optimizer.StepsOf(m.Flow[0].Name));
            // conv_in's moments were dropped when the base stage handed over (its weights were re-parameterised).
            Assert.Equal(4, trainer.Optimizer.StepsOf(m.ConvIn[0].Name));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Resuming_across_the_base_flow_and_consistency_boundaries_equals_a_straight_run()
    {
        var straightDir = TempDir("straight");
        var resumedDir = TempDir("resumed");
        try
        {
            IReadOnlyList<StepRecord> straight;
            Dictionary<string, Tensor> straightWeights;
            using (var trainer = new Trainer(Compact(photos.Dir, straightDir)))
            {
                straight = trainer.Run(6).Steps;
                straightWeights = trainer.Model.Checkpointed.ToDictionary(p => p.Name, p => p.Param.detach().clone());
            }
            // 3 + 3: the first run stops inside the flow stage's first half (after its zeroing step), the second crosses into consistency.
            var resumed = new List<StepRecord>();
            using (var trainer = new Trainer(Compact(photos.Dir, resumedDir)))
                resumed.AddRange(trainer.Run(3).Steps);
            using (var trainer = new Trainer(Compact(photos.Dir, resumedDir)))
            {
                trainer.Resume(resumedDir);
                Assert.Equal(3, trainer.Step);
                resumed.AddRange(trainer.Run(6).Steps);
                Assert.Equal(["base", "base", "flow", "flow", "consistency", "consistency"], resumed.Select(r => r.Stage));
                for (int i = 0; i < straight.Count; i++)
                {
                    Assert.Equal(straight[i].Loss, resumed[i].Loss, 1e-5 * Math.Max(1, Math.Abs(straight[i].Loss)));
                    Assert.Equal(straight[i].LossBaseline, resumed[i].LossBaseline, 1e-5 * Math.Max(1, Math.Abs(straight[i].LossBaseline)));
                }
                foreach (var p in trainer.Model.Checkpointed)
                    TensorAssert.Close(straightWeights[p.Name], p.Param.detach(), 1e-5, 1e-4, p.Name);
            }
            foreach (var t in straightWeights.Values) t.Dispose();
        }
        finally
        {
            Directory.Delete(straightDir, true);
            Directory.Delete(resumedDir, true);
        }
    }

    [Fact]
    public void Export_writes_a_compact_weights_file_that_loads_with_the_trained_values()
    {
        var dir = TempDir("export");
        try
        {
            using var trainer = new Trainer(Compact(photos.Dir, dir));
            trainer.Run(3);
            var file = Path.Combine(dir, "exported.safetensors");
            trainer.ExportCompact(file);
            Assert.False(File.Exists(file + ".partial"));
            Assert.True(CompactModelFile.IsCompactFile(file));
            using var loaded = CompactDloral.Load(file);
            var trained = trainer.Model.Compact!.NamedWeights().ToDictionary(kv => kv.Key, kv => kv.Value);
            int compared = 0;
            foreach (var (name, t) in loaded.NamedWeights())
            {
                TensorAssert.Equal(trained[name].detach(), t.detach(), name);
                compared++;
            }
            Assert.Equal(trained.Count, compared);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void With_ema_decay_validation_and_export_use_the_weight_average_and_a_resumed_run_continues_it_exactly()
    {
        var straightDir = TempDir("ema-straight");
        var resumedDir = TempDir("ema-resumed");
        try
        {
            void Ema(TrainingConfig c) { c.Optimizer.EmaDecay = 0.9; c.CheckpointEvery = 2; }
            Dictionary<string, Tensor> straightAverage;
            using (var trainer = new Trainer(Compact(photos.Dir, straightDir, Ema)))
            {
                trainer.Run(5);
                var average = trainer.Average!;
                Assert.Equal(5, average.Updates);
                straightAverage = trainer.Model.Checkpointed.ToDictionary(p => p.Name, p => average[p.Name].clone());
                Assert.True(File.Exists(Path.Combine(TrainingCheckpoint.Find(straightDir)!, WeightAverage.FileName)));

                // The average differs from the trained weights (the base stage moved them), and validation leaves the
                // trained weights exactly as they were.
                var trained = Snapshot(trainer.Model);
                Assert.Contains(trainer.Model.Checkpointed, p => !average[p.Name].allclose(p.Param.detach(), 0, 1e-7));
                trainer.Validate();
                foreach (var p in trainer.Model.All) TensorAssert.Equal(trained[p.Name], p.Param.detach(), p.Name);

                // Export writes the average, not the last step's weights.
                var file = Path.Combine(straightDir, "ema.export.safetensors");
                trainer.ExportCompact(file);
                using var loaded = CompactDloral.Load(file);
                var exported = loaded.NamedWeights().ToDictionary(kv => kv.Key, kv => kv.Value);
                int compared = 0;
                foreach (var p in trainer.Model.Checkpointed)
                {
                    TensorAssert.Equal(average[p.Name], exported[p.Name].detach(), p.Name);
                    compared++;
                }
                Assert.Equal(trainer.Model.Checkpointed.Count(), compared);
                foreach (var t in trained.Values) t.Dispose();
            }
            using (var trainer = new Trainer(Compact(photos.Dir, resumedDir, Ema)))
                trainer.Run(2);
            using (var trainer = new Trainer(Compact(photos.Dir, resumedDir, Ema)))
            {
                trainer.Resume(resumedDir);
                Assert.Equal(2, trainer.Average!.Updates);
                trainer.Run(5);
                foreach (var p in trainer.Model.Checkpointed)
                    TensorAssert.Close(straightAverage[p.Name], trainer.Average[p.Name], 1e-5, 1e-4, p.Name);
            }
            foreach (var t in straightAverage.Values) t.Dispose();
        }
        finally
        {
            Directory.Delete(straightDir, true);
            Directory.Delete(resumedDir, true);
        }
    }

    [Fact]
    public void When_the_base_stage_ends_the_base_takes_its_average_and_conv_in_stops_reading_the_previous_latent()
    {
        var dir = TempDir("handover");
        try
        {
            using var trainer = new Trainer(Compact(photos.Dir, dir, c => c.Optimizer.EmaDecay = 0.9));
            var m = trainer.Model;
            trainer.Run(4); // base 0–1, flow 2–3
            var average = trainer.Average!;
            int c = m.Model.LatentChannels;
            var convIn = BaseStageHandover.ConvInInputWeights(m);
            Assert.Equal(3, convIn.Count); // the base conv and the two LoRA down-projections
            Assert.All(convIn, p => Assert.True(p.Param.narrow(1, 0, c).abs().sum().item<float>() > 0, $"{p.Name}: previous half already zero"));
            Assert.Contains(m.Full, p => !average[p.Name].allclose(p.Param.detach(), 0, 1e-7));

            using var generator = new Generator(7);
            using var latent = randn([1, c, 16, 16], generator: generator);
            Tensor SingleFrame()
            {
                using var mode = inference_mode();
                return m.Model.DenoiseSingleFrame(latent, m.Compact!.PromptEmbeds).clone();
            }
            Tensor before;
            using (average.Apply(m.Checkpointed)) before = SingleFrame();

            trainer.AccumulateGradients(); // step 4: the first consistency step hands over first
            m.ZeroGrad();
            foreach (var p in m.TrainableIn(TrainingStage.Base)) TensorAssert.Equal(average[p.Name], p.Param.detach(), p.Name);
            foreach (var p in convIn)
            {
                Assert.Equal(0f, p.Param.narrow(1, 0, c).abs().sum().item<float>());
                Assert.Equal(0f, average[p.Name].narrow(1, 0, c).abs().sum().item<float>());
                Assert.Equal(0, trainer.Optimizer.StepsOf(p.Name));
            }
            // Exact for the single-frame input [z ‖ z]: the output is the average's before the hand-over.
            using var after = SingleFrame();
            TensorAssert.Close(before, after, 1e-5, 1e-5, "single-frame output");
            // Idempotent (an abandoned first step runs it again): a second hand-over changes nothing.
            var snapshot = Snapshot(m);
            BaseStageHandover.Apply(m, average, trainer.Optimizer);
            foreach (var p in m.All) TensorAssert.Equal(snapshot[p.Name], p.Param.detach(), p.Name);
            foreach (var t in snapshot.Values) t.Dispose();
            before.Dispose();
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void With_base_previous_frame_the_base_sees_the_video_path_on_three_clips_in_four_and_the_handover_keeps_conv_in()
    {
        var dir = TempDir("pair");
        try
        {
            TrainingConfig Config(bool pair) => Compact(photos.Dir, Path.Combine(dir, pair ? "pair" : "single"), c =>
                c.Schedule = c.Schedule with { BaseSteps = 5, FlowSteps = 0, BasePreviousFrame = pair });
            using var single = new Trainer(Config(false));
            using var pair = new Trainer(Config(true));
            var a = single.Run(5).Steps;
            var b = pair.Run(5).Steps;
            Assert.All(a.Concat(b), s => Assert.Equal("base", s.Stage));
            // Clip 0 (and 4) is a video's first frame, [z ‖ z], in both runs; clips 1–3 take [warped previous ‖ fused current].
            Assert.Equal(a[0].Loss, b[0].Loss);
            for (int i = 1; i < 4; i++) Assert.NotEqual(a[i].Loss, b[i].Loss);

            // The hand-over keeps conv_in's previous half (it now carries what the base learned from the previous frame).
            int c = pair.Model.Model.LatentChannels;
            var convIn = BaseStageHandover.ConvInInputWeights(pair.Model);
            var before = convIn.ToDictionary(p => p.Name, p => p.Param.detach().clone());
            pair.AccumulateGradients(); // step 5: the hand-over runs first
            pair.Model.ZeroGrad();
            foreach (var p in convIn)
            {
                Assert.True(p.Param.narrow(1, 0, c).abs().sum().item<float>() > 0, $"{p.Name}: previous half folded");
                TensorAssert.Equal(before[p.Name], p.Param.detach(), p.Name);
            }
            foreach (var t in before.Values) t.Dispose();
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_run_of_no_steps_after_resume_reports_the_checkpoint_it_resumed_from()
    {
        // `train --resume OTHER_RUN --steps 0 --export F` once printed the output folder's own newest checkpoint, a
        // different run's, as the one it stood on.
        var runDir = TempDir("from");
        var outDir = TempDir("into");
        try
        {
            using (var trainer = new Trainer(Compact(photos.Dir, runDir))) trainer.Run(2);
            using (var trainer = new Trainer(Compact(photos.Dir, outDir))) trainer.Run(1); // an unrelated older checkpoint there
            string resumed = TrainingCheckpoint.Find(runDir)!;
            using var again = new Trainer(Compact(photos.Dir, outDir));
            again.Resume(runDir);
            var r = again.Run(2);
            Assert.Empty(r.Steps);
            Assert.Equal(resumed, r.Checkpoint);
            // Once it steps, its own new checkpoint is the one.
            var next = again.Run(3);
            Assert.Equal(TrainingCheckpoint.Find(outDir), next.Checkpoint);
            Assert.Equal(3, TrainingCheckpoint.ReadState(next.Checkpoint!).Step);
        }
        finally
        {
            Directory.Delete(runDir, true);
            Directory.Delete(outDir, true);
        }
    }

    [Fact]
    public void Folding_keeps_a_conv_over_a_doubled_input_exact_and_rejects_other_shapes()
    {
        using var generator = new Generator(3);
        using var weight = randn([5, 8, 3, 3], generator: generator);
        using var z = randn([1, 4, 6, 6], generator: generator);
        using var doubled = cat([z, z], 1);
        using var expected = nn.functional.conv2d(doubled, weight, padding: [1, 1]);
        BaseStageHandover.FoldPreviousIntoCurrent(weight, 4);
        Assert.Equal(0f, weight.narrow(1, 0, 4).abs().sum().item<float>());
        using var actual = nn.functional.conv2d(doubled, weight, padding: [1, 1]);
        TensorAssert.Close(expected, actual, 1e-5, 1e-5, "conv over [z ‖ z]");
        using var wrong = zeros(5, 6, 3, 3);
        Assert.Throws<ArgumentException>(() => BaseStageHandover.FoldPreviousIntoCurrent(wrong, 4));
    }

    [Fact]
    public void The_base_learning_rate_decays_linearly_to_a_tenth_over_its_last_fraction()
    {
        var dir = TempDir("lr");
        try
        {
            using var trainer = new Trainer(Compact(photos.Dir, dir, c =>
            {
                c.Schedule = c.Schedule with { BaseSteps = 10 };
                c.Optimizer.BaseLearningRate = 1e-3;
                c.Optimizer.FlowLearningRate = 3e-4;
                c.Optimizer.BaseDecayFraction = 0.5;
            }));
            var s = trainer.Schedule;
            Assert.Equal(1e-3, trainer.LearningRateAt(s.At(0)), 12);
            Assert.Equal(1e-3, trainer.LearningRateAt(s.At(4)), 12);
            Assert.Equal(1e-3 * (1 - 0.9 * 1 / 5), trainer.LearningRateAt(s.At(5)), 12);
            Assert.Equal(1e-4, trainer.LearningRateAt(s.At(9)), 12);
            Assert.Equal(3e-4, trainer.LearningRateAt(s.At(10)), 12);
            Assert.Equal(1e-3, trainer.LearningRateAt(s.At(12)), 12); // the reference's stages use learning_rate
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void The_compact_recipe_config_loads_and_points_at_the_model_folder()
    {
        var c = TrainingConfig.Load(Path.Combine(GoldenData.RepoRoot, "configs", "compact.json"));
        Assert.Equal("compact", c.Model.Source);
        Assert.True(File.Exists(Path.Combine(c.ResolvePath(c.Model.Compact!), "compact.json")));
        Assert.True(File.Exists(c.ResolvePath(c.Data.Degradation)));
        Assert.True(c.Schedule.BaseSteps > 0 && c.Schedule.FlowSteps > 0);
        Assert.Null(c.Losses.CsdTeacher);
        Assert.True(c.Losses.TemporalRelative);
        Assert.Equal([0.25, 0.7], c.Data.PhotoScaleRange);
        Assert.Throws<InvalidDataException>(() => TrainingConfig.Parse("""{ "data": { "photo_scale_range": [0.5, 1.5] } }"""));
        var next = TrainingConfig.Load(Path.Combine(GoldenData.RepoRoot, "configs", "compact-continue.json"));
        Assert.True(CompactModelFile.IsCompactFile(next.ResolvePath(next.Model.Compact!)), "the second round starts from the shipped weights");
        Assert.InRange(next.Optimizer.EmaDecay, 0.99, 0.9999);
        Assert.Throws<InvalidDataException>(() => TrainingConfig.Parse("""{ "model": { "source": "compact", "compact": "x" }, "optimizer": { "ema_decay": 1.0 } }"""));
        Assert.Throws<InvalidDataException>(() => TrainingConfig.Parse("""{ "model": { "source": "compact" } }"""));
        Assert.Throws<InvalidDataException>(() => TrainingConfig.Parse("""{ "model": { "source": "compact", "compact": "x" }, "losses": { "csd_teacher": "model" } }"""));
        Assert.Throws<InvalidDataException>(() => TrainingConfig.Parse("""{ "schedule": { "base_steps": 5 } }""")); // source 'dloral' has its prior
    }
}
