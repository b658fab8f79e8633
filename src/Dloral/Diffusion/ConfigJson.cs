using System.Text.Json;

namespace Dloral.Diffusion;

/// <summary>Typed reads of a diffusers config.json with the reference defaults; wrong types name the key and file.</summary>
internal sealed class ConfigJson
{
    private readonly JsonElement _root;
    public string Source { get; }

    public ConfigJson(JsonElement root, string source)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{source}: config is not a JSON object");
        _root = root; Source = source;
    }

    public static ConfigJson Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"config file not found: {path}", path);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            return new ConfigJson(doc.RootElement.Clone(), path);
        }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e); }
    }

    private bool TryGet(string key, out JsonElement value) =>
        _root.TryGetProperty(key, out value) && value.ValueKind != JsonValueKind.Null;

    public bool IsNull(string key) => !TryGet(key, out _);

    public bool IsExplicitNull(string key) => _root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Null;

    private InvalidDataException Bad(string key, string expected) =>
        new($"{Source}: config key '{key}' must be {expected}, found {_root.GetProperty(key).GetRawText()}");

    public string String(string key, string fallback) =>
        !TryGet(key, out var v) ? fallback : v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Bad(key, "a string");

    public string? StringOrNull(string key) =>
        !TryGet(key, out var v) ? null : v.ValueKind == JsonValueKind.String ? v.GetString() : throw Bad(key, "a string");

    public bool Bool(string key, bool fallback) =>
        !TryGet(key, out var v) ? fallback : v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw Bad(key, "true or false");

    public double Double(string key, double fallback) =>
        !TryGet(key, out var v) ? fallback : v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw Bad(key, "a number");

    public long Long(string key, long fallback) =>
        !TryGet(key, out var v) ? fallback : v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var l) ? l : throw Bad(key, "an integer");

    public long? LongOrNull(string key) =>
        !TryGet(key, out var v) ? null : v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var l) ? l : throw Bad(key, "an integer");

    public string[] Strings(string key, string[] fallback)
    {
        if (!TryGet(key, out var v)) return fallback;
        if (v.ValueKind != JsonValueKind.Array || v.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String)) throw Bad(key, "a list of strings");
        return v.EnumerateArray().Select(e => e.GetString()!).ToArray();
    }

    /// <summary>An integer or a list of integers (diffusers accepts both for per-block settings); null when absent.</summary>
    public long[]? LongsOrScalar(string key, int count)
    {
        if (!TryGet(key, out var v)) return null;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var l)) return Enumerable.Repeat(l, count).ToArray();
        if (v.ValueKind == JsonValueKind.Array && v.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number))
        {
            var arr = v.EnumerateArray().Select(e => e.GetInt64()).ToArray();
            if (arr.Length != count) throw new InvalidDataException($"{Source}: config key '{key}' has {arr.Length} entries, expected {count} (one per block)");
            return arr;
        }
        throw Bad(key, "an integer or a list of integers");
    }

    public bool[] BoolsOrScalar(string key, int count, bool fallback)
    {
        if (!TryGet(key, out var v)) return Enumerable.Repeat(fallback, count).ToArray();
        if (v.ValueKind is JsonValueKind.True or JsonValueKind.False) return Enumerable.Repeat(v.GetBoolean(), count).ToArray();
        if (v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == count) return v.EnumerateArray().Select(e => e.GetBoolean()).ToArray();
        throw Bad(key, $"a bool or a list of {count} bools");
    }
}
