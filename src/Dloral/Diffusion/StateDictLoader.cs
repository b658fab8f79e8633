using Dloral.Checkpoints;
using static TorchSharp.torch;

namespace Dloral.Diffusion;

/// <summary>Why a state_dict did not fit a module: every missing, unexpected and mis-shaped key, together.</summary>
public sealed class StateDictMismatchException : Exception
{
    public string WeightsSource { get; }
    public IReadOnlyList<string> Missing { get; }
    public IReadOnlyList<string> Unexpected { get; }
    public IReadOnlyList<(string Key, long[] Expected, long[] Found)> ShapeMismatches { get; }

    public StateDictMismatchException(string source, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected,
        IReadOnlyList<(string Key, long[] Expected, long[] Found)> shapeMismatches)
        : base(Describe(source, missing, unexpected, shapeMismatches))
    {
        WeightsSource = source; Missing = missing; Unexpected = unexpected; ShapeMismatches = shapeMismatches;
    }

    private static string Describe(string source, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected,
        IReadOnlyList<(string Key, long[] Expected, long[] Found)> shapes)
    {
        const int Shown = 20;
        var sb = new System.Text.StringBuilder($"weights in {source} do not match the model:");
        void List(string title, IReadOnlyList<string> items)
        {
            if (items.Count == 0) return;
            sb.Append($"\n  {items.Count} {title}: ").Append(string.Join(", ", items.Take(Shown)));
            if (items.Count > Shown) sb.Append($", … ({items.Count - Shown} more)");
        }
        List("missing keys (in the model, not in the file)", missing);
        List("unexpected keys (in the file, not in the model)", unexpected);
        List("shape mismatches", shapes.Select(s => $"{s.Key} expected [{string.Join(",", s.Expected)}] found [{string.Join(",", s.Found)}]").ToList());
        return sb.ToString();
    }
}

/// <summary>What a non-strict load left out.</summary>
public sealed record StateDictLoadResult(IReadOnlyList<string> Loaded, IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected);

/// <summary>
/// Loads weights into a module's parameters and buffers IN PLACE, by state_dict name (no second copy of the model:
/// safetensors data is read straight into each parameter, converting dtype per tensor). Validates everything before
/// writing anything: a mismatch leaves the module untouched.
/// </summary>
public static class StateDictLoader
{
    /// <summary>
    /// Loads from safetensors files (one, or the shards of a sharded checkpoint).
    /// </summary>
    /// <param name="module">Target module; its <c>state_dict()</c> names are the expected keys.</param>
    /// <param name="files">Open safetensors files; a key must not occur in two of them.</param>
    /// <param name="prefix">If set, only file keys starting with it are used, with the prefix removed (e.g. "unet.").</param>
    /// <param name="keyFilter">If set, only file keys (after prefix removal) it accepts are used; others are ignored.</param>
    /// <param name="strict">Strict: missing and unexpected keys are errors. Non-strict: they are returned. Shape mismatches are always errors.</param>
    public static StateDictLoadResult Load(nn.Module module, IReadOnlyList<SafeTensorsFile> files, string? prefix = null,
        Func<string, bool>? keyFilter = null, bool strict = true)
    {
        var source = files.Count == 1 ? files[0].Path : $"{files.Count} shards ({string.Join(", ", files.Select(f => Path.GetFileName(f.Path)))})";
        var available = new Dictionary<string, (SafeTensorsFile File, string FileKey, long[] Shape)>(StringComparer.Ordinal);
        foreach (var f in files)
            foreach (var (fileKey, entry) in f.Entries)
            {
                var key = MapKey(fileKey, prefix, keyFilter);
                if (key is null) continue;
                if (!available.TryAdd(key, (f, fileKey, entry.Shape)))
                    throw new InvalidDataException($"tensor '{fileKey}' occurs in both {available[key].File.Path} and {f.Path}");
            }
        return Apply(module, source, available.ToDictionary(kv => kv.Key, kv => kv.Value.Shape),
            (key, target) => { var a = available[key]; a.File.ReadInto(a.FileKey, target); }, strict);
    }

    /// <summary>Loads from one safetensors file.</summary>
    public static StateDictLoadResult Load(nn.Module module, SafeTensorsFile file, string? prefix = null,
        Func<string, bool>? keyFilter = null, bool strict = true) => Load(module, [file], prefix, keyFilter, strict);

    /// <summary>Loads from in-memory tensors (any dtype/device: converted into the module's parameters).</summary>
    public static StateDictLoadResult Load(nn.Module module, IReadOnlyDictionary<string, Tensor> tensors, string source,
        string? prefix = null, Func<string, bool>? keyFilter = null, bool strict = true)
    {
        var available = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (k, t) in tensors)
            if (MapKey(k, prefix, keyFilter) is { } key) available[key] = t;
        return Apply(module, source, available.ToDictionary(kv => kv.Key, kv => kv.Value.shape),
            (key, target) => target.copy_(available[key]), strict);
    }

    private static string? MapKey(string fileKey, string? prefix, Func<string, bool>? keyFilter)
    {
        string key = fileKey;
        if (!string.IsNullOrEmpty(prefix))
        {
            if (!fileKey.StartsWith(prefix, StringComparison.Ordinal)) return null;
            key = fileKey[prefix.Length..];
        }
        return keyFilter is null || keyFilter(key) ? key : null;
    }

    private static StateDictLoadResult Apply(nn.Module module, string source, Dictionary<string, long[]> availableShapes,
        Action<string, Tensor> copyInto, bool strict)
    {
        var targets = module.state_dict();
        if (targets.Values.Any(t => t.device_type == TorchSharp.DeviceType.META))
            throw new InvalidOperationException($"cannot load {source} into a model built on the meta device (it has no storage); build it on a real device");
        var missing = targets.Keys.Where(k => !availableShapes.ContainsKey(k)).ToList();
        var unexpected = availableShapes.Keys.Where(k => !targets.ContainsKey(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var shapes = new List<(string, long[], long[])>();
        foreach (var (k, t) in targets)
            if (availableShapes.TryGetValue(k, out var found) && !found.SequenceEqual(t.shape))
                shapes.Add((k, t.shape, found));
        if (shapes.Count > 0 || (strict && (missing.Count > 0 || unexpected.Count > 0)))
            throw new StateDictMismatchException(source, strict ? missing : [], strict ? unexpected : [], shapes);

        var loaded = new List<string>();
        using (no_grad())
        {
            foreach (var (k, t) in targets)
            {
                if (!availableShapes.ContainsKey(k)) continue;
                copyInto(k, t);
                loaded.Add(k);
            }
        }
        return new StateDictLoadResult(loaded, missing, unexpected);
    }
}
