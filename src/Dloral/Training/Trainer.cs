using System.Diagnostics;
using Dloral.Diffusion;
using Dloral.Metrics;
using Dloral.Pipeline;
using Dloral.Temporal;
using Dloral.Training.ClipDatasets;
using Dloral.Training.Degradations;
using Dloral.Training.Losses;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Dloral.Training;

/// <summary>Options of a <see cref="Trainer"/> that are not part of the run's config.</summary>
public sealed class TrainerOptions
{
    /// <summary>Device to train on (default CPU).</summary>
    public Device? Device { get; init; }

    /// <summary>Progress output (null = silent).</summary>
    public TextWriter? Console { get; init; }

    /// <summary>Overrides the config's output folder.</summary>
    public string? Output { get; init; }

    /// <summary>Overrides the config's data folder.</summary>
    public string? DataFolder { get; init; }

    /// <summary>Called after every step of <see cref="Trainer.Run"/> (progress UIs; tests cancel from here).</summary>
    public Action<StepRecord>? OnStep { get; init; }

    /// <summary>Called after each checkpoint file is written (tests inject failures here).</summary>
    public Action<string>? AfterCheckpointFile { get; init; }
}

/// <summary>Result of <see cref="Trainer.Run"/>.</summary>
public sealed record TrainingRunResult(long FirstStep, long LastStep, bool Cancelled, string? Checkpoint, double SecondsPerStep, IReadOnlyList<StepRecord> Steps);

/// <summary>Validation metrics of the held-out clip (RGB PSNR of the model and, in <c>PsnrBicubic</c>, of its bicubic input on the same frames).</summary>
public sealed record ValidationResult(double Psnr, double Ssim, double WarpingError, double Loss, string? Sample, double PsnrBicubic = double.NaN);

/// <summary>
/// DLoRAL's training loop (the reference's train_DLoRAL.py, with its bugs fixed): 3-frame clips, windows (0,1) and
/// (1,2) through the one-step model (a recurrent model may train on longer clips, whose earlier frames warm it up);
/// L2 + perceptual + temporal (+ CSD in the enhancement stage) weighted by <see cref="StageSchedule"/>; the stage's parameter set trains with AdamW (gradient clipping over ALL trained
/// parameters — the reference clips only its first group — and gradient accumulation). Every random choice is a
/// function of (seed, step), so a resumed run reproduces an uninterrupted one.
/// </summary>
public sealed class Trainer : IDisposable
{
    private readonly TrainerOptions _options;
    private readonly Device _device;
    private readonly ScalarType _dtype;
    private readonly IClipDataset _dataset;
    private readonly Degrader _degrader;
    private readonly IPerceptualLoss? _perceptual;
    private readonly TemporalLoss _temporal = new();
    private readonly CsdLoss? _csd;
    private readonly Tensor _promptEmbeds;
    private readonly bool _ownsPrompt = true;
    private readonly Tensor? _negativeEmbeds;
    private readonly TrainingLog _log;
    private ClipLoader? _loader;
    private TrainingClip? _validationClip;
    private WeightAverage? _average;
    private long _lastSavedStep = -1;
    private string? _resumedFrom; // the checkpoint that holds the current weights while no step has run since Resume

    public Trainer(TrainingConfig config, TrainerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        Config = config;
        _options = options ?? new TrainerOptions();
        _device = _options.Device ?? CPU;
        _dtype = config.Model.Dtype == "bfloat16" ? ScalarType.BFloat16 : ScalarType.Float32;
        Schedule = new StageSchedule(config.Schedule);
        OutputDirectory = Path.GetFullPath(_options.Output ?? config.ResolvePath(config.Output));
        Directory.CreateDirectory(OutputDirectory);

        var dataFolder = _options.DataFolder ?? config.ResolvePath(config.Data.Folder);
        _dataset = OpenDataset(dataFolder, SplitPart.Train);
        var degradation = DegradationConfig.FromPreset(config.Data.Degradation is "dloral" or "default" or "light" ? config.Data.Degradation : config.ResolvePath(config.Data.Degradation));
        if (!config.Data.VideoCompression) degradation.VideoCompression.Prob = 0;
        _degrader = new Degrader(degradation);

        try
        {
            Model = TrainingModel.Create(config, _device, config.Seed);
            Optimizer = new AdamWOptimizer(new AdamWOptions
            {
                LearningRate = config.Optimizer.LearningRate, Beta1 = config.Optimizer.Beta1, Beta2 = config.Optimizer.Beta2,
                Epsilon = config.Optimizer.Epsilon, WeightDecay = config.Optimizer.WeightDecay,
            });
            if (config.Optimizer.EmaDecay > 0) _average = new WeightAverage(Model.Checkpointed, config.Optimizer.EmaDecay);
            if (Model.Compact is { } compact)
            {
                // The compact model has no text encoder: its learned prompt embedding trains with the base (owned by the model).
                _promptEmbeds = compact.PromptEmbeds;
                _ownsPrompt = false;
            }
            else
            {
                // Resolved only here: a compact run needs no diffusers folder (nor the golden data its default points to).
                using var prompts = PromptEncoder.FromDiffusersFolder(config.ResolvePath(config.Model.Diffusers), _device);
                // Encode runs in inference mode; a clone made outside it can take part in autograd graphs.
                using var pos = prompts.Encode(config.Prompt);
                using var neg = prompts.Encode(config.NegativePrompt);
                _promptEmbeds = pos.to_type(_dtype).clone().DetachFromDisposeScope();
                _negativeEmbeds = neg.to_type(_dtype).clone().DetachFromDisposeScope();
            }
            if (config.Losses.Perceptual == "resnet18")
                _perceptual = PerceptualLoss.Load(config.Losses.PerceptualOnnx is { } onnx ? config.ResolvePath(onnx) : null, _device);
            else if (config.Losses.Perceptual == "lpips")
                _perceptual = LpipsLoss.Load(config.ResolvePath(config.Losses.LpipsVgg!), config.ResolvePath(config.Losses.LpipsLin!), _device);
            if (config.Losses.CsdTeacher is { } teacher)
            {
                var folder = DiffusersFolder.Open(config.ResolvePath(teacher == "model" ? config.Model.Diffusers : teacher));
                var schedule = DdpmSchedule.FromConfigFile(folder.ComponentFile("scheduler", "scheduler_config.json"));
                _csd = new CsdLoss(folder.LoadUNet(new Nn.ModelOptions(_device, _dtype)), schedule, new CsdOptions
                {
                    GuidanceScale = config.Losses.CsdGuidance, MinStepRatio = config.Losses.CsdMinStepRatio, MaxStepRatio = config.Losses.CsdMaxStepRatio,
                });
            }
        }
        catch
        {
            Model?.Dispose();
            _perceptual?.Dispose();
            throw;
        }
        _log = new TrainingLog(Path.Combine(OutputDirectory, "train_log.jsonl"), _options.Console);
        WriteValidationList(dataFolder);
        // Unreadable files are skipped by the dataset (raised from loader threads); say so instead of failing.
        if (_dataset is ImageClipDataset images) images.Warning += m => _log.Message("warning: " + m);
        else if (_dataset is VideoClipDataset videos) videos.Warning += m => _log.Message("warning: " + m);
    }

    public TrainingConfig Config { get; }
    public StageSchedule Schedule { get; }
    public TrainingModel Model { get; }
    public AdamWOptimizer Optimizer { get; }
    public string OutputDirectory { get; }
    public string CheckpointDirectory => Path.Combine(OutputDirectory, "checkpoints");

    /// <summary>The moving average of the weights that validation and export use (<c>optimizer.ema_decay</c>); null when off.</summary>
    public WeightAverage? Average => _average;

    /// <summary>Completed optimizer steps (the reference's global_step before the next update).</summary>
    public long Step { get; private set; }

    /// <summary>Clips consumed from the data stream.</summary>
    public long DataPosition => Step * Config.Optimizer.GradientAccumulation;

    /// <summary>Whether a CSD teacher is configured.</summary>
    public bool HasCsd => _csd is not null;

    private IClipDataset OpenDataset(string folder, SplitPart split, bool flow = false)
    {
        var d = Config.Data;
        if (d.Kind == "videos")
            return new VideoClipDataset(folder, new VideoClipOptions { Frames = d.Frames, CropSize = d.Crop, Split = split, ValidationFraction = d.ValidationFraction });
        return new ImageClipDataset(folder, new ImageClipOptions
        {
            Frames = d.Frames, CropSize = d.Crop, Split = split, ValidationFraction = d.ValidationFraction,
            ShiftRange = flow ? d.FlowShiftRange : d.ShiftRange,
            PhotoScaleRange = d.PhotoScaleRange,
        });
    }

    /// <summary>
    /// Writes validation_files.txt into the run folder: the held-out files (full paths, one per line) the model never trains
    /// on, so evaluation clips can be made from exactly them (scripts/make-eval-clips.sh).
    /// </summary>
    private void WriteValidationList(string dataFolder)
    {
        IReadOnlyList<string> held;
        try
        {
            held = OpenDataset(dataFolder, SplitPart.Validation).Files;
        }
        catch (InvalidDataException)
        {
            held = []; // too few files for a held-out split
        }
        AtomicFile.WriteAllText(Path.Combine(OutputDirectory, "validation_files.txt"),
            string.Concat(held.Select(f => Path.GetFullPath(f) + Environment.NewLine)));
    }

    /// <summary>Continues from a checkpoint folder (or the newest one under a run folder).</summary>
    public TrainingState Resume(string path)
    {
        var dir = TrainingCheckpoint.Find(path) ?? throw new DirectoryNotFoundException($"no training checkpoint in '{path}'");
        var state = TrainingCheckpoint.Restore(dir, Model, Optimizer);
        if (state.Seed != Config.Seed)
            _log.Message($"warning: checkpoint seed {state.Seed} differs from the config's {Config.Seed}; the data stream continues with the config's seed");
        Step = state.Step;
        _lastSavedStep = state.Step;
        _resumedFrom = dir;
        if (_average is not null)
        {
            var averageFile = Path.Combine(dir, WeightAverage.FileName);
            if (File.Exists(averageFile))
            {
                _average.Load(averageFile);
            }
            else
            {
                // A checkpoint of a run without EMA: the average starts here, at the restored weights.
                _average.Dispose();
                _average = new WeightAverage(Model.Checkpointed, Config.Optimizer.EmaDecay);
                _log.Message($"{dir} has no {WeightAverage.FileName}: the weight average starts at step {Step}");
            }
        }
        _loader?.Dispose();
        _loader = null;
        _log.Message($"resumed from {dir} at step {Step}");
        return state;
    }

    /// <summary>The clip stream of the current step's stage: the flow stage reads its own dataset (larger camera motion);
    /// switching rebuilds the stream at the current position, so it stays a function of (seed, position).</summary>
    private ClipLoader Loader
    {
        get
        {
            bool flow = Schedule.At(Step).Stage == TrainingStage.Flow;
            if (_loader is not null && _loaderIsFlow != flow)
            {
                _loader.Dispose();
                _loader = null;
            }
            _loaderIsFlow = flow;
            return _loader ??= new ClipLoader(flow ? FlowDataset : _dataset, new ClipLoaderOptions
            {
                Seed = Config.Seed,
                Prefetch = Math.Max(1, Config.Data.Prefetch),
                Workers = Math.Max(1, Config.Data.Workers),
                Scale = Config.Data.Scale,
                StartPosition = DataPosition,
            }, _degrader);
        }
    }

    private bool _loaderIsFlow;
    private IClipDataset? _flowDataset;
    private IClipDataset FlowDataset => _flowDataset ??= OpenDataset(_options.DataFolder ?? Config.ResolvePath(Config.Data.Folder), SplitPart.Train, flow: true);

    /// <summary>
    /// Forward of one clip and the weighted loss. <paramref name="generator"/> draws the CSD timesteps and noise.
    /// Returns the total loss tensor (with graph unless under no_grad) and the unweighted terms.
    /// </summary>
    public (Tensor Loss, LossTerms Terms) Forward(TrainingClip clip, StageWeights weights, Generator? generator)
    {
        ArgumentNullException.ThrowIfNull(clip);
        ArgumentNullException.ThrowIfNull(weights);
        var lrClip = clip.Lr ?? throw new InvalidOperationException("training clips need a degraded LR clip");
        if (weights.Stage == TrainingStage.Flow) return FlowForward(clip);
        using var scope = NewDisposeScope();
        var model = Model.Model;
        var hr = clip.Hr.to(ScalarType.Float32, _device);
        long t = hr.shape[0], size = hr.shape[2], width = hr.shape[3];
        var up = BicubicInput.Upscale(lrClip.to(_device), size, width);
        var src = (up * 2 - 1).to_type(_dtype);
        var tgt = hr * 2 - 1;
        var u8 = up.mul(255).round().to_type(ScalarType.Byte).cpu();
        Tensor latents;
        using (no_grad()) latents = model.EncodeLatents(src); // frozen VAE: no graph needed

        var images = new List<Tensor>();
        var xs = new List<Tensor>();
        Tensor? uncertaintyLast = null;
        Tensor? previousOutput = null;
        // The losses cover the clip's last three frames, the reference's windows (0,1) and (1,2). The base stage is
        // single-frame SR: the clip's frames are near-duplicates, so one window (the last) carries nearly all of the
        // clip's information at half the cost.
        int firstWindow = weights.Stage == TrainingStage.Base ? (int)t - 2 : (int)t - 3;
        bool singleFrame = weights.Stage == TrainingStage.Base && !(Schedule.Options.BasePreviousFrame && clip.Position % 4 != 0);
        // Frames before those three (data.frames > 3) warm up a recurrent model: it restores them without a loss or a
        // graph (no gradient runs back through time anyway), so the windows with a loss see what video inference sees,
        // the output of several recurrent steps, not of one.
        if (t > 3 && model.RecurrentPrevious && !singleFrame)
            using (no_grad())
                for (int i = 0; i < firstWindow; i++)
                    previousOutput = RestoreWindow(src, latents, u8, i, previousOutput, false, out _);
        for (int i = firstWindow; i + 1 < t; i++)
        {
            var x = RestoreWindow(src, latents, u8, i, previousOutput, singleFrame, out var unc);
            previousOutput = x;
            images.Add(model.DecodeLatents(x));
            xs.Add(x);
            uncertaintyLast = unc;
        }

        Tensor l2 = zeros(1, device: _device).squeeze(), perc = l2, temporal = l2, csd = l2;
        for (int i = 0; i < images.Count; i++)
        {
            var target = tgt.narrow(0, firstWindow + i + 1, 1);
            l2 = l2 + ReconstructionLoss.L2(images[i], target, Config.Losses.L2ChromaWeight);
            if (_perceptual is not null && weights.Lpips != 0) perc = perc + _perceptual.Compute(images[i], target);
        }
        if (weights.Temporal != 0)
        {
            for (int i = 1; i < images.Count; i++)
            {
                using var guide = _temporal.Guide(tgt.narrow(0, firstWindow + i, 1), tgt.narrow(0, firstWindow + i + 1, 1));
                Tensor? extra = null;
                if (Config.Losses.TemporalUseUncertainty && uncertaintyLast is not null)
                    extra = 1 - F.interpolate(uncertaintyLast.select(1, 0).to_type(ScalarType.Float32), size: [size, width], mode: InterpolationMode.Nearest);
                temporal = Config.Losses.TemporalRelative
                    ? temporal + TemporalLoss.Compute(images[i - 1], images[i], guide, extra, tgt.narrow(0, firstWindow + i, 1), tgt.narrow(0, firstWindow + i + 1, 1))
                    : temporal + TemporalLoss.Compute(images[i - 1], images[i], guide, extra);
            }
        }
        if (_csd is not null && weights.Csd > 0)
        {
            // The reference draws one noise for both windows.
            var noise = randn(xs[0].shape, dtype: ScalarType.Float32, generator: generator).to(_device);
            foreach (var x in xs) csd = csd + _csd.Compute(x, _promptEmbeds, _negativeEmbeds!, noise, generator);
        }
        var total = l2 * weights.L2 + perc * weights.Lpips + temporal * weights.Temporal + csd * weights.Csd;
        double baseline;
        using (no_grad())
        {
            using var b = ReconstructionLoss.L2(src.narrow(0, firstWindow + 1, images.Count).to_type(ScalarType.Float32), tgt.narrow(0, firstWindow + 1, images.Count), Config.Losses.L2ChromaWeight);
            baseline = b.item<float>() * images.Count; // summed over windows like l2
        }
        var terms = new LossTerms(l2.item<float>(), perc.item<float>(), temporal.item<float>(), csd.item<float>(), total.item<float>(), baseline);
        return (total.MoveToOuterDisposeScope(), terms);
    }

    /// <summary>
    /// Flow stage: SPyNet's flow (as the CFR computes it, on the bicubic-upscaled degraded frames) against the exact flow of
    /// the clip's synthetic camera motion, mean end-point error in latent pixels over windows (0,1) and (1,2).
    /// </summary>
    private (Tensor Loss, LossTerms Terms) FlowForward(TrainingClip clip)
    {
        using var scope = NewDisposeScope();
        var hr = clip.Hr;
        long size = hr.shape[2], width = hr.shape[3];
        var up = BicubicInput.Upscale(clip.Lr!.to(_device), size, width);
        var src = (up * 2 - 1).to_type(_dtype);
        Tensor epe = zeros(1, device: _device).squeeze();
        double zeroFlow = 0;
        long windows = hr.shape[0] - 1;
        for (int i = 1; i <= windows; i++)
        {
            var predicted = FlowSupervision.SpyNetFlow(Model.Model.Cfr, src.narrow(0, i, 1), src.narrow(0, i - 1, 1));
            var truth = FlowSupervision.CameraFlow(clip.Sample, i, i - 1).unsqueeze(0).to(_device);
            epe = epe + FlowSupervision.EndPointError(predicted.to_type(ScalarType.Float32), truth, ignoreBorder: 1) / windows;
            using (no_grad()) zeroFlow += FlowSupervision.EndPointError(zeros_like(predicted, dtype: ScalarType.Float32), truth, ignoreBorder: 1).item<float>() / windows;
        }
        var value = epe.item<float>();
        return (epe.MoveToOuterDisposeScope(), new LossTerms(0, 0, 0, 0, value, zeroFlow));
    }

    /// <summary>
    /// SPyNet starts the flow stage from zero flow: the last conv of every pyramid level is zeroed, because a randomly
    /// initialised SPyNet's flow is worse than none (measured: EPE 1.39 vs 0.60 latent px) and training from there is slow.
    /// Runs once, at the flow stage's first step (so a resumed run does the same).
    /// </summary>
    private void StartFlowStage()
    {
        using var noGrad = no_grad();
        foreach (var (name, p) in Model.Model.Cfr.SpyNet.named_parameters())
            if (SpyNet.IsLastLayerOfLevel(name)) p.zero_();
        _log.Message("flow stage: SPyNet starts from zero flow (last conv of every level zeroed)");
    }

    /// <summary>The uncertainty map of frames i, i+1 (uint8 bicubic input [T,3,H,W]) on the codec's latent grid, as the
    /// video pipeline computes it (defined at 1/8; resized when the codec factor is not 8).</summary>
    private Tensor WindowUncertainty(Tensor u8, int i, Tensor latents) =>
        UncertaintyMap.ToLatentGrid(UncertaintyMap.FromRgbFrames(u8.narrow(0, i, 2)).to(_dtype, _device), latents.shape[2], latents.shape[3]);

    /// <summary>
    /// The UNet input of a window: [warped previous ‖ CFR-fused current]; single-frame (the base stage, except with
    /// <c>schedule.base_previous_frame</c>) the current latent twice.
    /// </summary>
    /// <summary>
    /// Window (i, i+1)'s latents [1,2,C,h,w]. For a <see cref="DloralModel.RecurrentPrevious"/> model the previous one is the
    /// restored frame i: <paramref name="previousOutput"/> (the window before's x), or frame i restored alone when the
    /// clip starts here — as a video's second frame sees its first. Detached: no gradient runs back through time.
    /// Single-frame windows ([z ‖ z]) only read frame i+1, so they keep the input latents.
    /// </summary>
    private Tensor WindowLatents(Tensor latents, int i, Tensor? previousOutput, bool singleFrame)
    {
        var model = Model.Model;
        if (singleFrame || !model.RecurrentPrevious) return latents.narrow(0, i, 2).unsqueeze(0);
        Tensor previous;
        using (no_grad())
            previous = previousOutput?.detach() ?? model.Denoise(model.SingleFrameInput(latents.narrow(0, i, 1)), _promptEmbeds);
        return stack([previous.to_type(latents.dtype), latents.narrow(0, i + 1, 1)], 1);
    }

    /// <summary>
    /// Window (i, i+1) through the one-step model: its latents (<see cref="WindowLatents"/>), uncertainty (null for a
    /// single-frame window, which does not read it), UNet input and x = z − ε̂. Frames <paramref name="src"/> [T,3,H,W]
    /// in [−1,1], their latents, and the uint8 bicubic input for the uncertainty map.
    /// </summary>
    private Tensor RestoreWindow(Tensor src, Tensor latents, Tensor u8, int i, Tensor? previousOutput, bool singleFrame, out Tensor? uncertainty)
    {
        var lat = WindowLatents(latents, i, previousOutput, singleFrame);
        uncertainty = singleFrame ? null : WindowUncertainty(u8, i, latents);
        return Model.Model.Denoise(UnetInput(src.narrow(0, i, 2).unsqueeze(0), lat, uncertainty, singleFrame), _promptEmbeds);
    }

    private Tensor UnetInput(Tensor frames, Tensor latents, Tensor? uncertainty, bool singleFrame)
    {
        if (singleFrame) return Model.Model.SingleFrameInput(latents.select(1, 1)); // as `upscale --no-temporal`
        var (unetIn, retrieval) = Model.Model.Fuse(frames, latents, uncertainty ?? throw new ArgumentNullException(nameof(uncertainty)));
        retrieval.Dispose();
        return unetIn;
    }

    /// <summary>
    /// Forward + backward of the next step's clips (gradient accumulation included) with the step's stage set;
    /// gradients are left on the parameters. Returns the step's weights and mean loss terms.
    /// </summary>
    public (StageWeights Weights, LossTerms Terms) AccumulateGradients(CancellationToken cancellationToken = default)
    {
        var weights = Schedule.At(Step);
        if (weights.Stage == TrainingStage.Flow && Step == Schedule.Options.BaseSteps && Model.FromScratch) StartFlowStage();
        if (weights.Stage is TrainingStage.Consistency or TrainingStage.Enhancement && Step == Schedule.Options.PretrainSteps
            && Schedule.Options.BaseSteps > 0 && Model.FromScratch)
            _log.Message("base stage done: " + BaseStageHandover.Apply(Model, _average, Optimizer, foldConvIn: !Schedule.Options.BasePreviousFrame));
        Model.SetStage(weights.Stage);
        Model.ZeroGrad();
        int accum = Config.Optimizer.GradientAccumulation;
        double l2 = 0, perc = 0, temporal = 0, csd = 0, total = 0, baseline = 0;
        for (int m = 0; m < accum; m++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            long position = DataPosition + m;
            using var clip = Loader.Next();
            if (clip.Position != position) throw new InvalidOperationException($"data stream out of order: expected clip {position}, got {clip.Position}");
            using var gen = new Generator((ulong)DegradationRandom.Derive(Config.Seed, 0xC5D, position));
            using var scope = NewDisposeScope();
            var (loss, terms) = Forward(clip, weights, gen);
            (loss / accum).backward();
            l2 += terms.L2 / accum; perc += terms.Perceptual / accum; temporal += terms.Temporal / accum; csd += terms.Csd / accum; total += terms.Total / accum; baseline += terms.Baseline / accum;
        }
        return (weights, new LossTerms(l2, perc, temporal, csd, total, baseline));
    }

    /// <summary>
    /// The learning rate of a step: the stage's, and in the last <see cref="OptimizerSection.BaseDecayFraction"/> of the base
    /// stage decaying linearly to a tenth (a function of the step alone, so a resumed run follows the same curve).
    /// </summary>
    public double LearningRateAt(StageWeights w)
    {
        ArgumentNullException.ThrowIfNull(w);
        double lr = Config.Optimizer.LearningRateOf(w.Stage);
        long baseSteps = Schedule.Options.BaseSteps;
        double fraction = Config.Optimizer.BaseDecayFraction;
        if (w.Stage != TrainingStage.Base || fraction <= 0) return lr;
        long start = (long)Math.Floor(baseSteps * (1 - fraction));
        if (w.Step < start) return lr;
        return lr * (1 - 0.9 * (w.Step - start + 1) / (double)(baseSteps - start));
    }

    /// <summary>Clips the gradients of the stage's parameters, applies AdamW to them only, drops all gradients and advances the step.</summary>
    public double ApplyUpdate()
    {
        var trainable = Model.TrainableIn(Model.Stage);
        double norm = AdamWOptimizer.ClipGradNorm(trainable.Select(p => p.Param), Config.Optimizer.MaxGradNorm);
        Optimizer.Step(trainable.Select(p => (p.Name, p.Param)), LearningRateAt(Schedule.At(Step)));
        _average?.Update(Model.Checkpointed);
        Model.ZeroGrad();
        Step++;
        return norm;
    }

    /// <summary>One full optimizer step; returns its log record. Cancellation between micro-batches abandons the step (throws).</summary>
    public StepRecord TrainStep(CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        StageWeights w;
        LossTerms terms;
        try
        {
            (w, terms) = AccumulateGradients(cancellationToken);
            cancellationToken.ThrowIfCancellationRequested();
        }
        catch (OperationCanceledException)
        {
            // Abandon the half-accumulated step: the model stays at the last completed step, and the data stream is
            // rebuilt from that step's position on the next call.
            Model.ZeroGrad();
            _loader?.Dispose();
            _loader = null;
            throw;
        }
        double norm = ApplyUpdate();
        var record = new StepRecord(Step, w.Step, w.Stage.ToString().ToLowerInvariant(), w.Phase, w.Progress, w.L2, w.Lpips, w.Csd, w.Temporal,
            terms.L2, terms.Perceptual, terms.Temporal, terms.Csd, terms.Total, norm, LearningRateAt(w), clock.Elapsed.TotalSeconds, terms.Baseline);
        _log.Write(record);
        return record;
    }

    /// <summary>
    /// Trains until <paramref name="untilStep"/> (default: the config's steps) or cancellation; checkpoints every N
    /// steps and at exit (cancellation included), validates every M steps.
    /// </summary>
    public TrainingRunResult Run(long? untilStep = null, CancellationToken cancellationToken = default)
    {
        long target = untilStep ?? Config.Steps;
        long first = Step;
        var records = new List<StepRecord>();
        var clock = Stopwatch.StartNew();
        string? checkpoint = null;
        bool cancelled = false;
        _log.Message($"training {Config.Model.Source} model from step {Step} to {target} on {_dataset.Count} clip source(s), crop {Config.Data.Crop}, output {OutputDirectory}");
        while (Step < target)
        {
            if (cancellationToken.IsCancellationRequested) { cancelled = true; break; }
            StepRecord r;
            try
            {
                // A long step (full-size models) is abandoned between micro-batches so Ctrl-C saves promptly.
                r = TrainStep(cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                cancelled = true;
                break;
            }
            records.Add(r);
            _options.OnStep?.Invoke(r);
            if (Config.LogEvery > 0 && (Step % Config.LogEvery == 0 || Step == target)) _log.Progress(r, target);
            if (Config.CheckpointEvery > 0 && Step % Config.CheckpointEvery == 0) checkpoint = SaveCheckpoint(r.Loss);
            if (Config.ValidateEvery > 0 && Step % Config.ValidateEvery == 0) Validate();
        }
        if (Step != _lastSavedStep && Step > 0) checkpoint = SaveCheckpoint(records.Count > 0 ? records[^1].Loss : null);
        // No step since the last save: the weights are those of the checkpoint resumed from (which may be in another run
        // folder than the output's), else the output's newest.
        else checkpoint ??= _resumedFrom ?? TrainingCheckpoint.Find(CheckpointDirectory);
        double perStep = records.Count > 0 ? clock.Elapsed.TotalSeconds / records.Count : 0;
        return new TrainingRunResult(first, Step, cancelled, checkpoint, perStep, records);
    }

    /// <summary>Writes a checkpoint of the current step (atomically) and returns its folder.</summary>
    public string SaveCheckpoint(double? lastLoss = null)
    {
        var state = new TrainingState(Step, Config.Seed, DataPosition, Model.Stage.ToString().ToLowerInvariant(), lastLoss, DateTime.UtcNow);
        var dir = TrainingCheckpoint.Save(CheckpointDirectory, state, Model, Optimizer, Config, _options.AfterCheckpointFile, _average);
        _lastSavedStep = Step;
        _resumedFrom = null;
        return dir;
    }

    /// <summary>
    /// The held-out clip: the first validation-split file (or, when the folder has none, the first training file) with
    /// fixed crop, motion and degradation.
    /// </summary>
    public TrainingClip ValidationClip()
    {
        if (_validationClip is not null) return _validationClip;
        IClipDataset source;
        try
        {
            source = OpenDataset(_options.DataFolder ?? Config.ResolvePath(Config.Data.Folder), SplitPart.Validation);
        }
        catch (InvalidDataException)
        {
            source = _dataset; // too few files for a held-out split
        }
        long seed = DegradationRandom.Derive(Config.Seed, 0x7A1);
        var sample = source.Get(0, seed);
        try
        {
            var lr = _degrader.DegradeClip(sample.Hr, Config.Data.Scale, DegradationRandom.Derive(seed, 1), out var plan);
            _validationClip = new TrainingClip { Sample = sample, Lr = lr, Plan = plan, Position = -1, Seed = seed };
        }
        catch
        {
            sample.Dispose();
            throw;
        }
        return _validationClip;
    }

    /// <summary>Loss terms of a clip at the current step's weights, without gradients.</summary>
    public LossTerms Evaluate(TrainingClip clip, StageWeights? weights = null)
    {
        using var noGrad = no_grad();
        using var gen = new Generator((ulong)DegradationRandom.Derive(Config.Seed, 0xE7A1));
        var (loss, terms) = Forward(clip, weights ?? Schedule.At(Step), gen);
        loss.Dispose();
        return terms;
    }

    /// <summary>Runs the held-out clip: PSNR/SSIM (RGB, mean over output frames), warping error of the outputs along the ground-truth flow, loss; writes a sample PNG [bicubic | output | ground truth].
    /// With a weight average (<c>optimizer.ema_decay</c>) the averaged weights are the ones validated.</summary>
    public ValidationResult Validate()
    {
        var clip = ValidationClip();
        using var averaged = _average?.Apply(Model.Checkpointed);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var model = Model.Model;
        var hr = clip.Hr.to(ScalarType.Float32, _device);
        long t = hr.shape[0], h = hr.shape[2], w = hr.shape[3];
        var up = BicubicInput.Upscale(clip.Lr!.to(_device), h, w);
        var src = (up * 2 - 1).to_type(_dtype);
        var u8 = up.mul(255).round().to_type(ScalarType.Byte).cpu();
        var latents = model.EncodeLatents(src);
        var outputs = new List<Tensor>();
        bool singleFrame = Schedule.At(Step).Stage == TrainingStage.Base && !Schedule.Options.BasePreviousFrame;
        Tensor? previousOutput = null;
        for (int i = 0; i + 1 < t; i++)
        {
            previousOutput = RestoreWindow(src, latents, u8, i, previousOutput, singleFrame, out _);
            outputs.Add((model.DecodeLatents(previousOutput).to_type(ScalarType.Float32) * 0.5 + 0.5).clamp(0, 1));
        }
        double psnr = 0, ssim = 0, psnrBicubic = 0;
        for (int i = 0; i < outputs.Count; i++)
        {
            psnr += Psnr.Compute(outputs[i][0], hr[i + 1], yOnly: false) / outputs.Count;
            psnrBicubic += Psnr.Compute(up[i + 1], hr[i + 1], yOnly: false) / outputs.Count;
            ssim += Ssim.Compute(outputs[i][0], hr[i + 1], yOnly: false) / outputs.Count;
        }
        double warp = 0;
        for (int i = 1; i < outputs.Count; i++)
        {
            using var guide = _temporal.Guide(hr.narrow(0, i, 1) * 2 - 1, hr.narrow(0, i + 1, 1) * 2 - 1);
            warp += TemporalMetrics.WarpingError(outputs[i - 1], outputs[i], guide.FlowCurToPrev, guide.Valid).MeanAbsolute / Math.Max(1, outputs.Count - 1);
        }
        var terms = Evaluate(clip);
        var samplePath = Path.Combine(OutputDirectory, "validation", $"step-{Step:D8}.png");
        TrainingImages.SavePng(cat([up[t - 1], outputs[^1][0], hr[t - 1]], 2), samplePath);
        var result = new ValidationResult(psnr, ssim, warp, terms.Total, samplePath, psnrBicubic);
        _log.Write(new ValidationRecord(Step, psnr, ssim, warp, terms.Total, samplePath, psnrBicubic));
        return result;
    }

    /// <summary>Writes the compact model being trained as one weights file (the format <c>dloral upscale --model</c> loads), atomically;
    /// with a weight average (<c>optimizer.ema_decay</c>) the averaged weights.</summary>
    public void ExportCompact(string path, ScalarType dtype = ScalarType.Float32)
    {
        var compact = Model.Compact ?? throw new InvalidOperationException($"export: the model of this run is '{Config.Model.Source}', not 'compact'");
        var full = Path.GetFullPath(path);
        using (_average?.Apply(Model.Checkpointed))
            compact.Save(full, dtype); // SafeTensorsWriter writes a temp file and renames it: never a partial export
        _log.Message($"exported the compact model at step {Step} to {full}{(_average is null ? "" : $" (weight average of {_average.Updates} update(s), decay {_average.Decay})")}");
    }

    public void Dispose()
    {
        _loader?.Dispose();
        _validationClip?.Dispose();
        _average?.Dispose();
        _log.Dispose();
        _csd?.Dispose();
        _perceptual?.Dispose();
        if (_ownsPrompt) _promptEmbeds.Dispose();
        _negativeEmbeds?.Dispose();
        Optimizer.Dispose();
        Model.Dispose();
    }
}
