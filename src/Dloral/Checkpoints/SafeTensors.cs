using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Checkpoints;

/// <summary>One tensor entry of a safetensors header.</summary>
public sealed record SafeTensorEntry(string Name, string DType, long[] Shape, long Begin, long End)
{
    public long NumElements => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// Reads a .safetensors file (8-byte little-endian header length, JSON header, raw little-endian data).
/// The header is validated in full at open; a truncated or corrupt file is a <see cref="SafeTensorsException"/>,
/// never a crash or a silently zero tensor. Tensors are read on demand, straight into their destination.
/// </summary>
public sealed class SafeTensorsFile : IDisposable
{
    private const long MaxHeaderBytes = 100L * 1024 * 1024;
    private readonly FileStream _stream;
    private readonly long _dataStart;

    public string Path { get; }
    public IReadOnlyDictionary<string, SafeTensorEntry> Entries { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    private SafeTensorsFile(string path, FileStream stream, long dataStart,
        Dictionary<string, SafeTensorEntry> entries, Dictionary<string, string> metadata)
    {
        Path = path; _stream = stream; _dataStart = dataStart; Entries = entries; Metadata = metadata;
    }

    public static SafeTensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new SafeTensorsException(path, "file not found");
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            long fileLength = stream.Length;
            if (fileLength < 8) throw new SafeTensorsException(path, $"file is {fileLength} bytes, too short for a safetensors header");
            Span<byte> lenBytes = stackalloc byte[8];
            stream.ReadExactly(lenBytes);
            ulong headerLength = BitConverter.ToUInt64(lenBytes);
            if (headerLength > (ulong)(fileLength - 8))
                throw new SafeTensorsException(path, $"header length {headerLength} runs past the end of the file ({fileLength} bytes): truncated or not a safetensors file");
            if ((long)headerLength > MaxHeaderBytes)
                throw new SafeTensorsException(path, $"header length {headerLength} is implausibly large");
            var header = new byte[headerLength];
            stream.ReadExactly(header);
            long dataStart = 8 + (long)headerLength;
            long dataLength = fileLength - dataStart;
            var (entries, metadata) = ParseHeader(path, header, dataLength);
            return new SafeTensorsFile(path, stream, dataStart, entries, metadata);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    private static (Dictionary<string, SafeTensorEntry>, Dictionary<string, string>) ParseHeader(string path, byte[] header, long dataLength)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header); }
        catch (JsonException e) { throw new SafeTensorsException(path, $"header is not valid JSON ({e.Message})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafeTensorsException(path, "header is not a JSON object");
            var entries = new Dictionary<string, SafeTensorEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object)
                        throw new SafeTensorsException(path, "__metadata__ is not an object");
                    foreach (var m in prop.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                    continue;
                }
                entries[prop.Name] = ParseEntry(path, prop.Name, prop.Value, dataLength);
            }
            return (entries, metadata);
        }
    }

    private static SafeTensorEntry ParseEntry(string path, string name, JsonElement e, long dataLength)
    {
        try
        {
            string dtype = e.GetProperty("dtype").GetString() ?? "";
            int elementSize = ElementSize(dtype) ?? throw new SafeTensorsException(path, $"tensor '{name}' has unknown dtype '{dtype}'");
            var shape = e.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            if (shape.Any(d => d < 0)) throw new SafeTensorsException(path, $"tensor '{name}' has a negative dimension");
            var offsets = e.GetProperty("data_offsets").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            if (offsets.Length != 2) throw new SafeTensorsException(path, $"tensor '{name}' data_offsets must have 2 entries");
            long begin = offsets[0], end = offsets[1];
            if (begin < 0 || end < begin || end > dataLength)
                throw new SafeTensorsException(path, $"tensor '{name}' data_offsets [{begin}, {end}] lie outside the data section ({dataLength} bytes): truncated or corrupt file");
            long numel = shape.Aggregate(1L, (a, b) => a * b);
            if (numel * elementSize != end - begin)
                throw new SafeTensorsException(path, $"tensor '{name}' has {end - begin} bytes of data but shape [{string.Join(",", shape)}] of {dtype} needs {numel * elementSize}");
            return new SafeTensorEntry(name, dtype, shape, begin, end);
        }
        catch (KeyNotFoundException)
        {
            throw new SafeTensorsException(path, $"tensor '{name}' lacks dtype, shape or data_offsets");
        }
        catch (InvalidOperationException ex)
        {
            throw new SafeTensorsException(path, $"tensor '{name}' has a malformed entry ({ex.Message})");
        }
        catch (FormatException ex)
        {
            throw new SafeTensorsException(path, $"tensor '{name}' has a malformed entry ({ex.Message})");
        }
    }

    internal static int? ElementSize(string dtype) => dtype switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "F16" or "BF16" or "I16" or "U16" => 2,
        "I8" or "U8" or "BOOL" or "F8_E4M3" or "F8_E5M2" => 1,
        _ => null,
    };

    internal static ScalarType? ToScalarType(string dtype) => dtype switch
    {
        "F64" => ScalarType.Float64,
        "F32" => ScalarType.Float32,
        "F16" => ScalarType.Float16,
        "BF16" => ScalarType.BFloat16,
        "I64" => ScalarType.Int64,
        "I32" => ScalarType.Int32,
        "I16" => ScalarType.Int16,
        "I8" => ScalarType.Int8,
        "U8" => ScalarType.Byte,
        "BOOL" => ScalarType.Bool,
        _ => null,
    };

    internal static string FromScalarType(ScalarType t) => t switch
    {
        ScalarType.Float64 => "F64",
        ScalarType.Float32 => "F32",
        ScalarType.Float16 => "F16",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Int16 => "I16",
        ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8",
        ScalarType.Bool => "BOOL",
        _ => throw new NotSupportedException($"dtype {t} cannot be stored in safetensors"),
    };

    public bool Contains(string name) => Entries.ContainsKey(name);

    private SafeTensorEntry Entry(string name) =>
        Entries.TryGetValue(name, out var e) ? e : throw new SafeTensorsException(Path, $"no tensor named '{name}'");

    /// <summary>Loads a tensor as a new CPU tensor, optionally converted to <paramref name="dtype"/>.</summary>
    public Tensor Load(string name, ScalarType? dtype = null)
    {
        var e = Entry(name);
        var fileType = ToScalarType(e.DType) ?? throw new SafeTensorsException(Path, $"tensor '{name}' has dtype {e.DType}, which dloral cannot load");
        var t = empty(e.Shape, fileType);
        try
        {
            ReadRaw(e, t);
            if (dtype is { } d && d != fileType)
            {
                var converted = t.to_type(d);
                t.Dispose();
                return converted;
            }
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Fills <paramref name="target"/> in place (dtype converted as needed, any device). The shape must match exactly.
    /// When dtype matches and the target is a contiguous CPU tensor, bytes go straight from the file into it.
    /// </summary>
    public void ReadInto(string name, Tensor target)
    {
        var e = Entry(name);
        if (!e.Shape.SequenceEqual(target.shape))
            throw new SafeTensorsException(Path, $"tensor '{name}' has shape [{string.Join(",", e.Shape)}], expected [{string.Join(",", target.shape)}]");
        var fileType = ToScalarType(e.DType) ?? throw new SafeTensorsException(Path, $"tensor '{name}' has dtype {e.DType}, which dloral cannot load");
        using var noGrad = no_grad();
        if (fileType == target.dtype && target.device_type == DeviceType.CPU && target.is_contiguous())
        {
            ReadRaw(e, target);
            return;
        }
        using var tmp = empty(e.Shape, fileType);
        ReadRaw(e, tmp);
        target.copy_(tmp);
    }

    /// <summary>Loads every tensor (small files: golden cases, adapters).</summary>
    public Dictionary<string, Tensor> LoadAll(ScalarType? dtype = null) =>
        Entries.Keys.ToDictionary(k => k, k => Load(k, dtype), StringComparer.Ordinal);

    private void ReadRaw(SafeTensorEntry e, Tensor t)
    {
        long length = e.End - e.Begin;
        if (length == 0) return;
        lock (_stream)
        {
            _stream.Position = _dataStart + e.Begin;
            var span = t.bytes;
            if (span.Length != length)
                throw new SafeTensorsException(Path, $"tensor '{e.Name}': {length} bytes in file, {span.Length} in destination");
            try { _stream.ReadExactly(span); }
            catch (EndOfStreamException) { throw new SafeTensorsException(Path, $"tensor '{e.Name}': file ends before its data (truncated)"); }
        }
    }

    public void Dispose() => _stream.Dispose();
}

/// <summary>Writes .safetensors files atomically (temp file beside the destination, then rename).</summary>
public static class SafeTensorsWriter
{
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var header = new Dictionary<string, object>(StringComparer.Ordinal);
        if (metadata is { Count: > 0 }) header["__metadata__"] = metadata;
        long offset = 0;
        var contiguous = new List<(string Name, Tensor T)>(list.Count);
        foreach (var (name, t) in list)
        {
            var c = t.device_type == DeviceType.CPU ? t.contiguous() : t.cpu().contiguous();
            long n = c.NumberOfElements * c.ElementSize;
            header[name] = new Dictionary<string, object>
            {
                ["dtype"] = SafeTensorsFile.FromScalarType(c.dtype),
                ["shape"] = c.shape,
                ["data_offsets"] = new[] { offset, offset + n },
            };
            offset += n;
            contiguous.Add((name, c));
        }
        var json = JsonSerializer.SerializeToUtf8Bytes(header);
        int pad = (8 - json.Length % 8) % 8; // keep data 8-byte aligned, as the reference writer does
        var headerBytes = new byte[json.Length + pad];
        json.CopyTo(headerBytes, 0);
        for (int i = json.Length; i < headerBytes.Length; i++) headerBytes[i] = (byte)' ';

        string dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        string tmp = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                fs.Write(BitConverter.GetBytes((ulong)headerBytes.Length));
                fs.Write(headerBytes);
                foreach (var (_, c) in contiguous) fs.Write(c.bytes);
                fs.Flush(true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            if (File.Exists(tmp)) File.Delete(tmp);
            throw;
        }
        finally
        {
            for (int i = 0; i < contiguous.Count; i++)
                if (!ReferenceEquals(contiguous[i].T, list[i].Value)) contiguous[i].T.Dispose();
        }
    }
}
