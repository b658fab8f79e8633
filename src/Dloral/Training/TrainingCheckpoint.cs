using System.Globalization;
using System.Text.Json;
using Dloral.Checkpoints;
using static TorchSharp.torch;

namespace Dloral.Training;

/// <summary>What a checkpoint's state.json records besides the tensors.</summary>
/// <param name="Step">Completed optimizer steps.</param>
/// <param name="Seed">The run's seed: every random draw (data order and crops, degradations, CSD timesteps and noise) is a pure function of (seed, step), so no generator state needs saving.</param>
/// <param name="DataPosition">Clips consumed from the loader's stream (= step · gradient accumulation).</param>
/// <param name="Stage">Stage of the last step.</param>
/// <param name="LastLoss">Total loss of the last step.</param>
/// <param name="SavedUtc">When it was written.</param>
public sealed record TrainingState(long Step, long Seed, long DataPosition, string Stage, double? LastLoss, DateTime SavedUtc);

/// <summary>
/// Training checkpoints: a folder <c>step-NNNNNNNN/</c> under the run's <c>checkpoints/</c> holding
/// <c>trainable.safetensors</c> (every parameter that ever trains: adapters, CFR, conv_in, plus the whole UNet for
/// from-scratch models, by "unet.…"/"cfr.…" name), <c>optimizer.safetensors</c> (AdamW moments, float32 masters, per-
/// parameter step counts in the metadata), <c>config.json</c> and <c>state.json</c>. A checkpoint is written into a
/// hidden temporary folder and renamed into place only when complete, so a crash or an exception mid-write never
/// replaces or damages the last good one; the newest <see cref="Keep"/> checkpoints are kept.
/// </summary>
public static class TrainingCheckpoint
{
    public const string WeightsFile = "trainable.safetensors";
    public const string OptimizerFile = "optimizer.safetensors";
    public const string StateFile = "state.json";
    public const string ConfigFile = "config.json";
    private const string Prefix = "step-";

    /// <summary>How many complete checkpoints are kept (the last and the previous).</summary>
    public const int Keep = 2;

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>The folder name of a step.</summary>
    public static string FolderName(long step) => Prefix + step.ToString("D8", CultureInfo.InvariantCulture);

    /// <summary>
    /// Writes a checkpoint of <paramref name="state"/>.Step into <paramref name="checkpointsDir"/> and returns its folder.
    /// <paramref name="afterFileWritten"/> is called after each file (tests use it to fail mid-write).
    /// </summary>
    public static string Save(string checkpointsDir, TrainingState state, TrainingModel model, AdamWOptimizer optimizer, TrainingConfig config,
                              Action<string>? afterFileWritten = null, WeightAverage? average = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        Directory.CreateDirectory(checkpointsDir);
        var final = Path.Combine(checkpointsDir, FolderName(state.Step));
        if (File.Exists(Path.Combine(final, StateFile))) return final; // this step is already saved
        var tmp = Path.Combine(checkpointsDir, $".tmp-{FolderName(state.Step)}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        try
        {
            var weights = model.Checkpointed.Select(p => new KeyValuePair<string, Tensor>(p.Name, p.Param)).ToList();
            Write(tmp, WeightsFile, path => SafeTensorsWriter.Save(path, weights, new Dictionary<string, string> { ["step"] = state.Step.ToString(CultureInfo.InvariantCulture) }), afterFileWritten);
            var (tensors, steps) = optimizer.Export();
            Write(tmp, OptimizerFile, path => SafeTensorsWriter.Save(path, tensors, new Dictionary<string, string> { ["steps"] = AdamWOptimizer.StepsToJson(steps) }), afterFileWritten);
            if (average is not null) Write(tmp, WeightAverage.FileName, average.Save, afterFileWritten);
            Write(tmp, ConfigFile, path => File.WriteAllText(path, config.ToJson()), afterFileWritten);
            // state.json last: its presence marks a complete checkpoint.
            Write(tmp, StateFile, path => File.WriteAllText(path, JsonSerializer.Serialize(state, JsonOptions)), afterFileWritten);
            if (Directory.Exists(final)) Directory.Delete(final, recursive: true); // an incomplete leftover without state.json
            Directory.Move(tmp, final);
        }
        catch
        {
            try { if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true); }
            catch (IOException) { /* best effort: a hidden temp folder is ignored by Latest */ }
            throw;
        }
        Prune(checkpointsDir);
        return final;
    }

    private static void Write(string dir, string name, Action<string> write, Action<string>? after)
    {
        var path = Path.Combine(dir, name);
        write(path);
        after?.Invoke(path);
    }

    /// <summary>Complete checkpoints (with state.json), oldest first.</summary>
    public static IReadOnlyList<string> List(string checkpointsDir)
    {
        if (!Directory.Exists(checkpointsDir)) return [];
        return Directory.GetDirectories(checkpointsDir, Prefix + "*")
            .Where(d => File.Exists(Path.Combine(d, StateFile)))
            .OrderBy(d => Path.GetFileName(d), StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// The checkpoint to resume from: <paramref name="path"/> itself when it is one, else the newest complete one in
    /// <c>path/checkpoints/</c> or <c>path/</c>; null when none exists.
    /// </summary>
    public static string? Find(string path)
    {
        if (File.Exists(Path.Combine(path, StateFile))) return path;
        foreach (var dir in new[] { Path.Combine(path, "checkpoints"), path })
        {
            var all = List(dir);
            if (all.Count > 0) return all[^1];
        }
        return null;
    }

    /// <summary>Reads state.json of a checkpoint folder.</summary>
    public static TrainingState ReadState(string checkpointDir)
    {
        var path = Path.Combine(checkpointDir, StateFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"'{checkpointDir}' is not a complete training checkpoint (no {StateFile})", path);
        return JsonSerializer.Deserialize<TrainingState>(File.ReadAllText(path), JsonOptions)
            ?? throw new InvalidDataException($"{path}: empty training state");
    }

    /// <summary>Loads the trained parameters and the optimizer state of a checkpoint into <paramref name="model"/> / <paramref name="optimizer"/>.</summary>
    public static TrainingState Restore(string checkpointDir, TrainingModel model, AdamWOptimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        var state = ReadState(checkpointDir);
        using (var weights = SafeTensorsFile.Open(Path.Combine(checkpointDir, WeightsFile)))
        {
            var expected = model.Checkpointed.ToList();
            var missing = expected.Where(p => !weights.Contains(p.Name)).Select(p => p.Name).ToList();
            var unexpected = weights.Entries.Keys.Except(expected.Select(p => p.Name)).ToList();
            if (missing.Count > 0 || unexpected.Count > 0)
                throw new InvalidDataException($"{weights.Path}: does not match the model being trained (missing {missing.Count}: {string.Join(", ", missing.Take(10))}; unexpected {unexpected.Count}: {string.Join(", ", unexpected.Take(10))})");
            using var noGrad = no_grad();
            foreach (var p in expected)
            {
                var entry = weights.Entries[p.Name];
                if (!entry.Shape.SequenceEqual(p.Param.shape))
                    throw new InvalidDataException($"{weights.Path}: {p.Name} is [{string.Join(",", entry.Shape)}], the model has [{string.Join(",", p.Param.shape)}]");
                using var t = weights.Load(p.Name);
                p.Param.copy_(t);
            }
        }
        using (var opt = SafeTensorsFile.Open(Path.Combine(checkpointDir, OptimizerFile)))
        {
            if (!opt.Metadata.TryGetValue("steps", out var stepsJson)) throw new InvalidDataException($"{opt.Path}: no 'steps' metadata");
            var tensors = opt.LoadAll();
            try
            {
                optimizer.Import(tensors, AdamWOptimizer.StepsFromJson(stepsJson), model.ConvIn[0].Param.device, opt.Path);
            }
            finally
            {
                foreach (var t in tensors.Values) t.Dispose();
            }
        }
        return state;
    }

    /// <summary>
    /// Applies the trained weights of a checkpoint to an inference model built the same way (e.g. by
    /// <see cref="Pipeline.DloralModelLoader"/> from the same diffusers folder + model.pkl): "unet.…" names go to the
    /// UNet, "cfr.…" to the CFR. Every name must exist with the same shape.
    /// </summary>
    public static void ApplyTo(Pipeline.DloralModel model, string checkpointDir)
    {
        ArgumentNullException.ThrowIfNull(model);
        var dir = Find(checkpointDir) ?? throw new DirectoryNotFoundException($"no training checkpoint in '{checkpointDir}'");
        var targets = model.Unet.named_parameters().Select(p => ("unet." + p.name, p.parameter))
            .Concat(model.Cfr.named_parameters().Select(p => ("cfr." + p.name, p.parameter)))
            .ToDictionary(p => p.Item1, p => p.parameter, StringComparer.Ordinal);
        using var weights = SafeTensorsFile.Open(Path.Combine(dir, WeightsFile));
        var unknown = weights.Entries.Keys.Where(k => !targets.ContainsKey(k)).ToList();
        var wrongShape = weights.Entries.Where(e => targets.TryGetValue(e.Key, out var t) && !e.Value.Shape.SequenceEqual(t.shape)).Select(e => e.Key).ToList();
        if (unknown.Count > 0 || wrongShape.Count > 0)
            throw new InvalidDataException($"{weights.Path}: does not fit this model (unknown {unknown.Count}: {string.Join(", ", unknown.Take(10))}; wrong shape {wrongShape.Count}: {string.Join(", ", wrongShape.Take(10))})");
        bool merged = model.Adapters.MergeAdapters;
        if (merged) Lora.LoraModel.Unmerge(model.Unet);
        using (no_grad())
            foreach (var name in weights.Entries.Keys) weights.ReadInto(name, targets[name]);
        if (merged) model.Configure(model.Adapters);
    }

    private static void Prune(string checkpointsDir)
    {
        var all = List(checkpointsDir);
        for (int i = 0; i < all.Count - Keep; i++)
        {
            try { Directory.Delete(all[i], recursive: true); }
            catch (IOException) { /* an old checkpoint that cannot be removed now is removed next time */ }
        }
    }
}
