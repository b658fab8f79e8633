using System.IO.Compression;
using static TorchSharp.torch;

namespace Dloral.Checkpoints;

/// <summary>
/// A <c>torch.save</c> file (the zip format of PyTorch ≥ 1.6: <c>&lt;root&gt;/data.pkl</c>,
/// <c>&lt;root&gt;/data/&lt;key&gt;</c> raw storages, optional <c>&lt;root&gt;/byteorder</c>) read with
/// <see cref="SafeUnpickler"/>. Each storage is read once (per key) into a flat CPU tensor and every
/// tensor is an <c>as_strided</c> view of it, so views and shared storages keep their sharing.
/// Storage locations such as <c>cuda:0</c> load to the CPU. The object owns all tensors it returns:
/// dispose it (or copy what you keep) when done.
/// </summary>
public sealed class TorchCheckpoint : IDisposable
{
    private readonly List<Tensor> _tensors;

    /// <summary>The unpickled object: PyDict / List / PyTuple / string / long / double / bool / null / Tensor.</summary>
    public object? Root { get; }
    public string Path { get; }
    /// <summary>The folder name inside the zip ("archive", or the file stem for older torch).</summary>
    public string ArchiveRoot { get; }
    /// <summary>Every storage by key.</summary>
    public IReadOnlyDictionary<string, TorchStorage> Storages { get; }

    private TorchCheckpoint(object? root, string path, string archiveRoot, Dictionary<string, TorchStorage> storages, List<Tensor> tensors)
    {
        Root = root;
        Path = path;
        ArchiveRoot = archiveRoot;
        Storages = storages;
        _tensors = tensors;
    }

    /// <summary>Reads a torch.save zip safely (allow-listed globals only).</summary>
    public static TorchCheckpoint Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"checkpoint not found: {path}", path);
        using var file = File.OpenRead(path);
        var magic = new byte[4];
        var got = file.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
        if (got < 4)
            throw new CheckpointFormatException(path, $"the file is only {got} bytes long: not a torch.save checkpoint");
        if (magic[0] == 0x80 && magic[1] <= 5)
            throw new CheckpointFormatException(path, "this is a legacy (pre-1.6, non-zip) torch.save file, which dloral does not read; re-save it with a recent PyTorch or convert it to safetensors");
        if (magic[0] != (byte)'P' || magic[1] != (byte)'K')
            throw new CheckpointFormatException(path, "not a torch.save zip (no zip signature)");
        file.Position = 0;

        ZipArchive zip;
        try
        {
            zip = new ZipArchive(file, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (InvalidDataException e)
        {
            throw new CheckpointFormatException(path, $"the zip container is truncated or corrupt ({e.Message})", e);
        }
        using (zip)
        {
            try
            {
                return Read(zip, path);
            }
            catch (Exception e) when (e is InvalidDataException or NotSupportedException or IOException or OverflowException or ArgumentException
                                          && e is not CheckpointFormatException)
            {
                throw new CheckpointFormatException(path, $"the zip container is corrupt ({e.GetType().Name}: {e.Message})", e);
            }
        }
    }

    private static TorchCheckpoint Read(ZipArchive zip, string path)
    {
        var pickles = zip.Entries.Where(e => e.FullName == "data.pkl" || e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal))
            .Where(e => e.FullName.Count(c => c == '/') <= 1).ToList();
        if (pickles.Count != 1)
            throw new CheckpointFormatException(path, pickles.Count == 0
                ? "no data.pkl record in the zip: not a torch.save checkpoint"
                : $"several data.pkl records ({string.Join(", ", pickles.Select(p => p.FullName))})");
        var pkl = pickles[0];
        var root = pkl.FullName[..^"data.pkl".Length].TrimEnd('/');
        var prefix = root.Length == 0 ? "" : root + "/";
        var entries = zip.Entries.ToDictionary(e => e.FullName, StringComparer.Ordinal);

        var bigEndian = false;
        if (entries.TryGetValue(prefix + "byteorder", out var bo))
        {
            var order = System.Text.Encoding.ASCII.GetString(ReadAll(bo, path)).Trim();
            bigEndian = order switch
            {
                "little" => false,
                "big" => true,
                _ => throw new CheckpointFormatException(path, $"unknown byteorder record '{order}'"),
            };
        }

        var pickleBytes = ReadAll(pkl, path);
        var storages = new Dictionary<string, TorchStorage>(StringComparer.Ordinal);
        var tensors = new List<Tensor>();
        try
        {
            object? PersistentLoad(object? pid)
            {
                if (pid is not PyTuple { Count: 5 } t || t[0] as string != "storage")
                    throw new CheckpointFormatException(path, $"unsupported persistent id {pid} (expected ('storage', type, key, location, numel))");
                if (t[1] is not PyGlobal { Module: "torch" } storageType || !StorageDType(storageType.Name, out var dtype))
                    throw new CheckpointFormatException(path, $"unsupported storage type {t[1]}");
                if (t[2] is not string key || t[3] is not string location || t[4] is not long numel || numel < 0)
                    throw new CheckpointFormatException(path, $"malformed storage persistent id {t}");
                if (storages.TryGetValue(key, out var existing))
                {
                    if (existing.DType != dtype)
                        throw new CheckpointFormatException(path, $"storage '{key}' is used as both {existing.DType} and {dtype}");
                    return existing;
                }
                var storage = ReadStorage(entries, prefix, key, dtype, location, numel, bigEndian, path);
                storages[key] = storage;
                tensors.Add(storage.Data);
                return storage;
            }

            var unpickler = new SafeUnpickler(pickleBytes, $"{path}:{pkl.FullName}", PersistentLoad);
            try
            {
                var result = unpickler.Load();
                tensors.AddRange(unpickler.CreatedTensors);
                return new TorchCheckpoint(result, path, root, storages, tensors);
            }
            catch
            {
                tensors.AddRange(unpickler.CreatedTensors);
                throw;
            }
        }
        catch
        {
            foreach (var t in tensors)
                t.Dispose();
            throw;
        }
    }

    private static bool StorageDType(string name, out ScalarType dtype)
    {
        dtype = name switch
        {
            "FloatStorage" => ScalarType.Float32,
            "DoubleStorage" => ScalarType.Float64,
            "HalfStorage" => ScalarType.Float16,
            "BFloat16Storage" => ScalarType.BFloat16,
            "LongStorage" => ScalarType.Int64,
            "IntStorage" => ScalarType.Int32,
            "ShortStorage" => ScalarType.Int16,
            "CharStorage" => ScalarType.Int8,
            "ByteStorage" or "UntypedStorage" => ScalarType.Byte,
            "BoolStorage" => ScalarType.Bool,
            _ => (ScalarType)(-1),
        };
        return (int)dtype >= 0;
    }

    private static int ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        _ => 1,
    };

    private static TorchStorage ReadStorage(Dictionary<string, ZipArchiveEntry> entries, string prefix, string key, ScalarType dtype,
        string location, long numel, bool bigEndian, string path)
    {
        var name = prefix + "data/" + key;
        if (key.Contains('/') || key.Contains("..", StringComparison.Ordinal) || !entries.TryGetValue(name, out var entry))
            throw new CheckpointFormatException(path, $"storage '{key}' has no record {name} in the zip");
        var elementSize = ElementSize(dtype);
        var expected = checked(numel * elementSize);
        if (entry.Length != expected)
            throw new CheckpointFormatException(path,
                $"storage '{key}' ({name}) holds {entry.Length} bytes, but the pickle declares {numel} elements of {dtype} = {expected} bytes");

        var data = empty(numel, dtype).DetachFromDisposeScope();
        try
        {
            using var stream = entry.Open();
            // Span lengths are int: fill large storages in chunks.
            const long chunkElements = (1L << 30) / 8;
            for (long start = 0; start < numel; start += chunkElements)
            {
                var count = Math.Min(chunkElements, numel - start);
                using var part = data.narrow(0, start, count);
                var span = part.bytes;
                try
                {
                    stream.ReadExactly(span);
                }
                catch (EndOfStreamException e)
                {
                    throw new CheckpointFormatException(path, $"storage '{key}' ({name}) ends early: the zip is truncated", e);
                }
                if (bigEndian && elementSize > 1)
                    for (var i = 0; i < span.Length; i += elementSize)
                        span.Slice(i, elementSize).Reverse();
            }
        }
        catch (InvalidDataException e)
        {
            data.Dispose();
            throw new CheckpointFormatException(path, $"storage '{key}' ({name}) cannot be read: {e.Message}", e);
        }
        catch
        {
            data.Dispose();
            throw;
        }
        return new TorchStorage(key, dtype, location, data);
    }

    private static byte[] ReadAll(ZipArchiveEntry entry, string path)
    {
        if (entry.Length > int.MaxValue)
            throw new CheckpointFormatException(path, $"{entry.FullName} is {entry.Length} bytes, too large for a pickle");
        var buffer = new byte[entry.Length];
        try
        {
            using var s = entry.Open();
            s.ReadExactly(buffer);
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException)
        {
            throw new CheckpointFormatException(path, $"{entry.FullName} cannot be read (truncated or corrupt zip): {e.Message}", e);
        }
        return buffer;
    }

    /// <summary>The root object as a dict (torch.save of a dict, the usual case).</summary>
    public PyDict RootDict => Root as PyDict
        ?? throw new CheckpointFormatException(Path, $"the checkpoint holds a {SafeUnpickler.TypeName(Root)}, not a dict");

    /// <summary>
    /// A nested dict of tensors (a state_dict) as name → tensor, in file order. The tensors stay owned
    /// by this checkpoint. Non-tensor values or non-string keys are an error naming them.
    /// </summary>
    public static Dictionary<string, Tensor> AsStateDict(object? value, string what, string path)
    {
        if (value is not PyDict d)
            throw new CheckpointFormatException(path, $"{what} is a {SafeUnpickler.TypeName(value)}, expected a dict of tensors");
        var result = new Dictionary<string, Tensor>(d.Count, StringComparer.Ordinal);
        foreach (var (k, v) in d)
        {
            if (k is not string name)
                throw new CheckpointFormatException(path, $"{what} has a non-string key {k}");
            result[name] = v as Tensor
                ?? throw new CheckpointFormatException(path, $"{what}['{name}'] is a {SafeUnpickler.TypeName(v)}, not a tensor");
        }
        return result;
    }

    public void Dispose()
    {
        foreach (var t in _tensors)
            t.Dispose();
        _tensors.Clear();
    }
}
