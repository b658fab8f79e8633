using System.Text.Json;
using static TorchSharp.torch;

namespace Dloral.Checkpoints;

/// <summary>Named tensors that can be copied into a module's parameters without loading them all first.</summary>
public interface IWeightSource
{
    /// <summary>What to name in error messages (a file path, "model.pkl[state_dict_unet]", ...).</summary>
    string Description { get; }
    IEnumerable<string> Names { get; }
    bool Contains(string name);
    long[] ShapeOf(string name);
    /// <summary>Fills <paramref name="target"/> in place (dtype converted, any device); shapes already checked.</summary>
    void ReadInto(string name, Tensor target);
}

/// <summary>One or more safetensors files (a sharded checkpoint is several).</summary>
public sealed class SafeTensorsWeightSource : IWeightSource, IDisposable
{
    private readonly List<SafeTensorsFile> _files = [];
    private readonly Dictionary<string, SafeTensorsFile> _byName = new(StringComparer.Ordinal);

    public string Description { get; }

    public SafeTensorsWeightSource(IEnumerable<string> paths)
    {
        try
        {
            foreach (var p in paths)
            {
                var f = SafeTensorsFile.Open(p);
                _files.Add(f);
                foreach (var name in f.Entries.Keys)
                    if (!_byName.TryAdd(name, f))
                        throw new InvalidDataException($"tensor '{name}' appears in both {_byName[name].Path} and {p}");
            }
        }
        catch
        {
            Dispose();
            throw;
        }
        Description = _files.Count == 1 ? _files[0].Path : $"{_files.Count} shards in {Path.GetDirectoryName(_files[0].Path)}";
    }

    /// <summary>Opens <c>&lt;folder&gt;/&lt;baseName&gt;.safetensors</c>, its sharded form
    /// (<c>.safetensors.index.json</c>) or the <c>fp16</c> variant, whichever exists first.</summary>
    public static SafeTensorsWeightSource OpenInFolder(string folder, string baseName)
    {
        string[] singles = [$"{baseName}.safetensors", $"{baseName}.fp16.safetensors"];
        foreach (var s in singles)
        {
            var p = Path.Combine(folder, s);
            if (File.Exists(p))
                return new SafeTensorsWeightSource([p]);
        }
        foreach (var idx in new[] { $"{baseName}.safetensors.index.json", $"{baseName}.safetensors.index.fp16.json", $"{baseName}.fp16.safetensors.index.json" })
        {
            var p = Path.Combine(folder, idx);
            if (!File.Exists(p))
                continue;
            List<string> shards;
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(p));
                shards = doc.RootElement.GetProperty("weight_map").EnumerateObject()
                    .Select(e => e.Value.GetString() ?? throw new InvalidDataException("null shard name"))
                    .Distinct().Select(f => Path.Combine(folder, f)).ToList();
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                throw new InvalidDataException($"{p}: not a valid safetensors index (needs a weight_map object): {e.Message}", e);
            }
            foreach (var s in shards)
                if (!File.Exists(s))
                    throw new FileNotFoundException($"{p} names shard {Path.GetFileName(s)}, which does not exist", s);
            return new SafeTensorsWeightSource(shards);
        }
        throw new FileNotFoundException(
            $"no weights in {folder}: expected {string.Join(" or ", singles)} (or a sharded {baseName}.safetensors.index.json)",
            Path.Combine(folder, singles[0]));
    }

    public IEnumerable<string> Names => _byName.Keys;
    public bool Contains(string name) => _byName.ContainsKey(name);
    public long[] ShapeOf(string name) => _byName[name].Entries[name].Shape;
    public void ReadInto(string name, Tensor target) => _byName[name].ReadInto(name, target);

    public void Dispose()
    {
        foreach (var f in _files)
            f.Dispose();
        _files.Clear();
    }
}

/// <summary>Tensors already in memory (a loaded pickle checkpoint, tests).</summary>
public sealed class DictionaryWeightSource(IReadOnlyDictionary<string, Tensor> tensors, string description) : IWeightSource
{
    public string Description { get; } = description;
    public IEnumerable<string> Names => tensors.Keys;
    public bool Contains(string name) => tensors.ContainsKey(name);
    public long[] ShapeOf(string name) => tensors[name].shape;

    public void ReadInto(string name, Tensor target)
    {
        using var noGrad = no_grad();
        target.copy_(tensors[name]);
    }
}
