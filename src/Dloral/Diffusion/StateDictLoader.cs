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
        void List(string title, string hint, IReadOnlyList<string> items)
        {
            if (items.Count == 0) return;
            sb.Append($"\n  {title} ({items.Count}, {hint}): ").Append(string.Join(", ", items.Take(Shown)));
            if (items.Count > Shown) sb.Append($", … ({items.Count - Shown} more)");
        }
        List("missing keys", "in the model, not in the source", missing);
        List("unexpected keys", "in the source, not in the model", unexpected);
        List("shape mismatches", "key expected [model] found [source]", shapes.Select(s => $"{s.Key} expected [{string.Join(",", s.Expected)}] found [{string.Join(",", s.Found)}]").ToList());
        return sb.ToString();
    }
}

/// <summary>What a non-strict load left out.</summary>
public sealed record StateDictLoadResult(IReadOnlyList<string> Loaded, IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected);

/// <summary>
/// The one strict loader: copies weights into a module's parameters and buffers IN PLACE, by state_dict name (no second
/// copy of the model: safetensors and lazy torch.save tensors are read straight into each parameter, converting dtype
/// per tensor). Every source kind (<see cref="IWeightSource"/>, safetensors files, in-memory tensors) goes through the
/// same validation: everything is checked before anything is written, so a mismatch leaves the module untouched and
/// throws one <see cref="StateDictMismatchException"/> listing every missing, unexpected and mis-shaped key.
/// </summary>
public static class StateDictLoader
{
    /// <summary>Loads from any weight source (safetensors, a lazy or eager torch.save checkpoint, a dictionary).</summary>
    /// <param name="module">Target module; its <c>state_dict()</c> names are the expected keys.</param>
    /// <param name="source">Where the tensors come from; its <see cref="IWeightSource.Description"/> names it in errors.</param>
    /// <param name="prefix">If set, only source keys starting with it are used, with the prefix removed (e.g. "unet.").</param>
    /// <param name="keyFilter">If set, only source keys (after prefix removal) it accepts are used; others are ignored.</param>
    /// <param name="strict">Strict: missing and unexpected keys are errors. Non-strict: they are returned. Shape mismatches are always errors.</param>
    /// <param name="optional">Module keys that may be absent from the source even when strict (they keep their
    /// constructed values and are not reported), e.g. the CLIP <c>position_ids</c> buffer newer transformers no longer save.</param>
    public static StateDictLoadResult Load(nn.Module module, IWeightSource source, string? prefix = null,
        Func<string, bool>? keyFilter = null, bool strict = true, IEnumerable<string>? optional = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        var sourceKeys = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in source.Names)
            if (MapKey(name, prefix, keyFilter) is { } key) sourceKeys[key] = name;
        return Apply(module, source, sourceKeys, strict, new HashSet<string>(optional ?? [], StringComparer.Ordinal));
    }

    /// <summary>
    /// Loads from safetensors files (one, or the shards of a sharded checkpoint).
    /// </summary>
    /// <param name="module">Target module; its <c>state_dict()</c> names are the expected keys.</param>
    /// <param name="files">Open safetensors files; a key must not occur in two of them.</param>
    /// <param name="prefix">If set, only file keys starting with it are used, with the prefix removed (e.g. "unet.").</param>
    /// <param name="keyFilter">If set, only file keys (after prefix removal) it accepts are used; others are ignored.</param>
    /// <param name="strict">Strict: missing and unexpected keys are errors. Non-strict: they are returned. Shape mismatches are always errors.</param>
    public static StateDictLoadResult Load(nn.Module module, IReadOnlyList<SafeTensorsFile> files, string? prefix = null,
        Func<string, bool>? keyFilter = null, bool strict = true) =>
        Load(module, new OpenFilesSource(files), prefix, keyFilter, strict);

    /// <summary>Loads from one safetensors file.</summary>
    public static StateDictLoadResult Load(nn.Module module, SafeTensorsFile file, string? prefix = null,
        Func<string, bool>? keyFilter = null, bool strict = true) => Load(module, [file], prefix, keyFilter, strict);

    /// <summary>Loads from in-memory tensors (any dtype/device: converted into the module's parameters).</summary>
    public static StateDictLoadResult Load(nn.Module module, IReadOnlyDictionary<string, Tensor> tensors, string source,
        string? prefix = null, Func<string, bool>? keyFilter = null, bool strict = true) =>
        Load(module, new DictionaryWeightSource(tensors, source), prefix, keyFilter, strict);

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

    private static StateDictLoadResult Apply(nn.Module module, IWeightSource source, Dictionary<string, string> sourceKeys,
        bool strict, HashSet<string> optional)
    {
        var targets = module.state_dict();
        if (targets.Values.Any(t => t.device_type == TorchSharp.DeviceType.META))
            throw new InvalidOperationException($"cannot load {source.Description} into a model built on the meta device (it has no storage); build it on a real device");
        var missing = targets.Keys.Where(k => !sourceKeys.ContainsKey(k) && !optional.Contains(k)).ToList();
        var unexpected = sourceKeys.Keys.Where(k => !targets.ContainsKey(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var shapes = new List<(string, long[], long[])>();
        foreach (var (k, t) in targets)
            if (sourceKeys.TryGetValue(k, out var name) && source.ShapeOf(name) is var found && !found.SequenceEqual(t.shape))
                shapes.Add((k, t.shape, found));
        if (shapes.Count > 0 || (strict && (missing.Count > 0 || unexpected.Count > 0)))
            throw new StateDictMismatchException(source.Description, strict ? missing : [], strict ? unexpected : [], shapes);

        var loaded = new List<string>();
        using (no_grad())
        {
            foreach (var (k, t) in targets)
            {
                if (!sourceKeys.TryGetValue(k, out var name)) continue;
                source.ReadInto(name, t);
                loaded.Add(k);
            }
        }
        return new StateDictLoadResult(loaded, missing, unexpected);
    }

    /// <summary>Already opened safetensors files (not owned: the caller disposes them); a key in two files is an error.</summary>
    private sealed class OpenFilesSource : IWeightSource
    {
        private readonly Dictionary<string, SafeTensorsFile> _byName = new(StringComparer.Ordinal);

        public OpenFilesSource(IReadOnlyList<SafeTensorsFile> files)
        {
            Description = files.Count == 1 ? files[0].Path : $"{files.Count} shards ({string.Join(", ", files.Select(f => Path.GetFileName(f.Path)))})";
            foreach (var f in files)
                foreach (var name in f.Entries.Keys)
                    if (!_byName.TryAdd(name, f))
                        throw new InvalidDataException($"tensor '{name}' occurs in both {_byName[name].Path} and {f.Path}");
        }

        public string Description { get; }
        public IEnumerable<string> Names => _byName.Keys;
        public bool Contains(string name) => _byName.ContainsKey(name);
        public long[] ShapeOf(string name) => _byName[name].Entries[name].Shape;
        public void ReadInto(string name, Tensor target) => _byName[name].ReadInto(name, target);
    }
}
