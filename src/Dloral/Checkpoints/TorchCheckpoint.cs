using System.IO.Compression;
using static TorchSharp.torch;

namespace Dloral.Checkpoints;

/// <summary>
/// A <c>torch.save</c> file (the zip format of PyTorch ≥ 1.6: <c>&lt;root&gt;/data.pkl</c>,
/// <c>&lt;root&gt;/data/&lt;key&gt;</c> raw storages, optional <c>&lt;root&gt;/byteorder</c>) read with
/// <see cref="SafeUnpickler"/>. Storage locations such as <c>cuda:0</c> load to the CPU.
/// <para>Eager (default): each storage is read once (per key) into a flat CPU tensor and every tensor
/// is an <c>as_strided</c> view of it, so views and shared storages keep their sharing. The object
/// owns those tensors: dispose it (or copy what you keep) when done.</para>
/// <para>Lazy: only the pickle is read; tensors are <see cref="TorchTensorRef"/>s whose bytes are read
/// from the zip on demand (straight into the destination when possible), so importing a 3.5 GB
/// checkpoint into a model needs no second copy in memory. The zip stays open until disposal.</para>
/// </summary>
public sealed class TorchCheckpoint : IDisposable
{
    private readonly List<Tensor> _tensors;
    private readonly IDisposable? _openZip;

    /// <summary>The unpickled object: PyDict / List / PyTuple / string / long / double / bool / null /
    /// Tensor (eager) or TorchTensorRef (lazy).</summary>
    public object? Root { get; }
    public string Path { get; }
    /// <summary>The folder name inside the zip ("archive", or the file stem for older torch).</summary>
    public string ArchiveRoot { get; }
    public bool IsLazy { get; }
    /// <summary>Every storage by key.</summary>
    public IReadOnlyDictionary<string, TorchStorage> Storages { get; }

    private TorchCheckpoint(object? root, string path, string archiveRoot, bool lazy, Dictionary<string, TorchStorage> storages,
        List<Tensor> tensors, IDisposable? openZip)
    {
        Root = root;
        Path = path;
        ArchiveRoot = archiveRoot;
        IsLazy = lazy;
        Storages = storages;
        _tensors = tensors;
        _openZip = openZip;
    }

    /// <summary>Reads a torch.save zip safely (allow-listed globals only).</summary>
    /// <param name="path">The checkpoint file.</param>
    /// <param name="lazy">Read tensor bytes on demand (<see cref="TorchTensorRef"/>) instead of now.</param>
    public static TorchCheckpoint Load(string path, bool lazy = false)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"checkpoint not found: {path}", path);
        var file = File.OpenRead(path);
        ZipArchive? zip = null;
        try
        {
            var magic = new byte[4];
            var got = file.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
            if (got < 4)
                throw new CheckpointFormatException(path, $"the file is only {got} bytes long: not a torch.save checkpoint");
            if (magic[0] == 0x80 && magic[1] <= 5)
                throw new CheckpointFormatException(path, "this is a legacy (pre-1.6, non-zip) torch.save file, which dloral does not read; re-save it with a recent PyTorch or convert it to safetensors");
            if (magic[0] != (byte)'P' || magic[1] != (byte)'K')
                throw new CheckpointFormatException(path, "not a torch.save zip (no zip signature)");
            file.Position = 0;
            try
            {
                zip = new ZipArchive(file, ZipArchiveMode.Read, leaveOpen: true);
            }
            catch (InvalidDataException e)
            {
                throw new CheckpointFormatException(path, $"the zip container is truncated or corrupt ({e.Message})", e);
            }
            TorchCheckpoint result;
            try
            {
                result = Read(zip, file, path, lazy);
            }
            catch (Exception e) when (e is InvalidDataException or NotSupportedException or IOException or OverflowException or ArgumentException
                                          && e is not CheckpointFormatException)
            {
                throw new CheckpointFormatException(path, $"the zip container is corrupt ({e.GetType().Name}: {e.Message})", e);
            }
            if (!lazy)
            {
                zip.Dispose();
                file.Dispose();
            }
            return result;
        }
        catch
        {
            zip?.Dispose();
            file.Dispose();
            throw;
        }
    }

    private sealed class OpenZip(ZipArchive zip, FileStream file) : IDisposable
    {
        public void Dispose()
        {
            lock (zip)
            {
                zip.Dispose();
                file.Dispose();
            }
        }
    }

    private static TorchCheckpoint Read(ZipArchive zip, FileStream file, string path, bool lazy)
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
        var entries = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
        foreach (var e in zip.Entries)
            entries[e.FullName] = e;

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
                if (t[1] is not PyGlobal { Module: "torch" } storageType || !SafeUnpickler.TryStorageDType(storageType.Name, out var dtype))
                    throw new CheckpointFormatException(path, $"unsupported storage type {t[1]}");
                if (t[2] is not string key || t[3] is not string location || t[4] is not long numel || numel < 0)
                    throw new CheckpointFormatException(path, $"malformed storage persistent id {t}");
                if (storages.TryGetValue(key, out var existing))
                {
                    if (existing.DType != dtype)
                        throw new CheckpointFormatException(path, $"storage '{key}' is used as both {existing.DType} and {dtype}");
                    return existing;
                }
                var entry = StorageEntry(entries, prefix, key, dtype, numel, path);
                TorchStorage storage;
                if (lazy)
                {
                    storage = new TorchStorage(key, dtype, location, numel, flat =>
                    {
                        // ZipArchive is not thread-safe: one reader at a time.
                        lock (zip)
                            ReadStorageBytes(entry, flat, key, dtype, bigEndian, path);
                    });
                }
                else
                {
                    var data = empty(numel, dtype).DetachFromDisposeScope();
                    tensors.Add(data);
                    ReadStorageBytes(entry, data, key, dtype, bigEndian, path);
                    storage = new TorchStorage(key, dtype, location, data);
                }
                storages[key] = storage;
                return storage;
            }

            var unpickler = new SafeUnpickler(pickleBytes, $"{path}:{pkl.FullName}", PersistentLoad);
            try
            {
                var result = unpickler.Load();
                tensors.AddRange(unpickler.CreatedTensors);
                return new TorchCheckpoint(result, path, root, lazy, storages, tensors, lazy ? new OpenZip(zip, file) : null);
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

    private static int ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        _ => 1,
    };

    // The record of a storage, with its size checked against the pickle's element count.
    private static ZipArchiveEntry StorageEntry(Dictionary<string, ZipArchiveEntry> entries, string prefix, string key, ScalarType dtype,
        long numel, string path)
    {
        var name = prefix + "data/" + key;
        if (key.Contains('/') || key.Contains("..", StringComparison.Ordinal) || !entries.TryGetValue(name, out var entry))
            throw new CheckpointFormatException(path, $"storage '{key}' has no record {name} in the zip");
        var expected = checked(numel * ElementSize(dtype));
        if (entry.Length != expected)
            throw new CheckpointFormatException(path,
                $"storage '{key}' ({name}) holds {entry.Length} bytes, but the pickle declares {numel} elements of {dtype} = {expected} bytes");
        return entry;
    }

    // Reads a whole storage record into a flat contiguous CPU tensor of its dtype.
    private static void ReadStorageBytes(ZipArchiveEntry entry, Tensor flat, string key, ScalarType dtype, bool bigEndian, string path)
    {
        var elementSize = ElementSize(dtype);
        var numel = flat.numel();
        try
        {
            using var stream = entry.Open();
            // Span lengths are int: fill large storages in chunks.
            const long chunkElements = (1L << 30) / 8;
            for (long start = 0; start < numel; start += chunkElements)
            {
                var count = Math.Min(chunkElements, numel - start);
                using var part = flat.narrow(0, start, count);
                var span = part.bytes;
                stream.ReadExactly(span);
                if (bigEndian && elementSize > 1)
                    for (var i = 0; i < span.Length; i += elementSize)
                        span.Slice(i, elementSize).Reverse();
            }
        }
        catch (EndOfStreamException e)
        {
            throw new CheckpointFormatException(path, $"storage '{key}' ({entry.FullName}) ends early: the zip is truncated", e);
        }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException or IOException && e is not CheckpointFormatException)
        {
            throw new CheckpointFormatException(path, $"storage '{key}' ({entry.FullName}) cannot be read: {e.Message}", e);
        }
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
    /// A dict of tensors (a state_dict) of an eagerly loaded checkpoint as name → tensor, in file
    /// order. The tensors stay owned by the checkpoint. Non-tensor values or non-string keys are an
    /// error naming them.
    /// </summary>
    public static Dictionary<string, Tensor> AsStateDict(object? value, string what, string path)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, v) in StateDictEntries(value, what, path))
            result[name] = v as Tensor ?? throw new CheckpointFormatException(path,
                v is TorchTensorRef ? $"{what}['{name}'] is lazy; open the checkpoint eagerly or use AsWeightSource"
                                    : $"{what}['{name}'] is a {SafeUnpickler.TypeName(v)}, not a tensor");
        return result;
    }

    /// <summary>A dict of tensors (eager or lazy) as a weight source for <see cref="Dloral.Diffusion.StateDictLoader"/>.</summary>
    public static IWeightSource AsWeightSource(object? value, string what, string path) =>
        new CheckpointWeightSource(StateDictEntries(value, what, path).ToList(), $"{path}[{what}]");

    private static IEnumerable<(string Name, object Value)> StateDictEntries(object? value, string what, string path)
    {
        if (value is not PyDict d)
            throw new CheckpointFormatException(path, $"{what} is a {SafeUnpickler.TypeName(value)}, expected a dict of tensors");
        foreach (var (k, v) in d)
        {
            if (k is not string name)
                throw new CheckpointFormatException(path, $"{what} has a non-string key {k}");
            if (v is not (Tensor or TorchTensorRef))
                throw new CheckpointFormatException(path, $"{what}['{name}'] is a {SafeUnpickler.TypeName(v)}, not a tensor");
            yield return (name, v);
        }
    }

    private sealed class CheckpointWeightSource : IWeightSource
    {
        private readonly Dictionary<string, object> _entries;

        public CheckpointWeightSource(List<(string Name, object Value)> entries, string description)
        {
            _entries = new Dictionary<string, object>(StringComparer.Ordinal);
            foreach (var (n, v) in entries)
                _entries[n] = v;
            Names = entries.Select(e => e.Name).ToArray();
            Description = description;
        }

        public string Description { get; }
        public IEnumerable<string> Names { get; }
        public bool Contains(string name) => _entries.ContainsKey(name);

        public long[] ShapeOf(string name) => _entries[name] switch
        {
            Tensor t => t.shape,
            TorchTensorRef r => r.Shape,
            _ => throw new InvalidOperationException(),
        };

        public void ReadInto(string name, Tensor target)
        {
            using var noGrad = no_grad();
            switch (_entries[name])
            {
                case Tensor t:
                    target.copy_(t);
                    break;
                case TorchTensorRef r:
                    r.ReadInto(target);
                    break;
            }
        }
    }

    public void Dispose()
    {
        foreach (var t in _tensors)
            t.Dispose();
        _tensors.Clear();
        _openZip?.Dispose();
    }
}
