using System.IO.Compression;
using System.Text;

namespace Dloral.Tests.Checkpoints;

/// <summary>Writes pickle opcodes by hand, so tests can build hostile and unusual torch.save files.</summary>
internal sealed class PickleWriter
{
    private readonly List<byte> _b = [];

    public PickleWriter Op(byte op) { _b.Add(op); return this; }
    public PickleWriter Proto(byte p) => Op(0x80).Op(p);
    public PickleWriter Mark() => Op((byte)'(');
    public PickleWriter Tuple() => Op((byte)'t');
    public PickleWriter EmptyTuple() => Op((byte)')');
    public PickleWriter EmptyDict() => Op((byte)'}');
    public PickleWriter EmptyList() => Op((byte)']');
    public PickleWriter SetItems() => Op((byte)'u');
    public PickleWriter SetItem() => Op((byte)'s');
    public PickleWriter Appends() => Op((byte)'e');
    public PickleWriter Reduce() => Op((byte)'R');
    public PickleWriter BinPersId() => Op((byte)'Q');
    public PickleWriter False() => Op(0x89);
    public PickleWriter None() => Op((byte)'N');
    public PickleWriter Stop() => Op((byte)'.');
    public PickleWriter Memoize() => Op(0x94);
    public PickleWriter BinGet(byte i) => Op((byte)'h').Op(i);
    public PickleWriter BinPut(byte i) => Op((byte)'q').Op(i);

    public PickleWriter Global(string module, string name)
    {
        Op((byte)'c');
        _b.AddRange(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
        return this;
    }

    public PickleWriter StackGlobal(string module, string name) => Str(module).Str(name).Op(0x93);

    public PickleWriter Inst(string module, string name)
    {
        Mark();
        Op((byte)'i');
        _b.AddRange(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
        return this;
    }

    public PickleWriter Str(string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        Op((byte)'X');
        _b.AddRange(BitConverter.GetBytes(bytes.Length));
        _b.AddRange(bytes);
        return this;
    }

    public PickleWriter Int(long v)
    {
        if (v is >= 0 and < 256)
            return Op((byte)'K').Op((byte)v);
        Op((byte)'J');
        _b.AddRange(BitConverter.GetBytes((int)v));
        return this;
    }

    public PickleWriter Ints(params long[] values)
    {
        Mark();
        foreach (var v in values)
            Int(v);
        return Tuple();
    }

    /// <summary>torch._utils._rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict()).</summary>
    public PickleWriter Tensor(string key, string storageType, string location, long numel, long offset, long[] size, long[] stride)
    {
        Global("torch._utils", "_rebuild_tensor_v2");
        Mark();
        Mark().Str("storage").Global("torch", storageType).Str(key).Str(location).Int(numel).Tuple().BinPersId();
        Int(offset).Ints(size).Ints(stride).False();
        Global("collections", "OrderedDict").EmptyTuple().Reduce();
        Tuple();
        return Reduce();
    }

    public byte[] ToArray() => [.. _b];

    /// <summary>Writes a state_dict the way torch.save does (one storage per tensor, contiguous).</summary>
    public static void WriteStateDict(string path, IEnumerable<KeyValuePair<string, TorchSharp.torch.Tensor>> tensors)
    {
        var w = new PickleWriter().Proto(2).EmptyDict().Mark();
        var storages = new Dictionary<string, byte[]>();
        foreach (var (name, t) in tensors)
        {
            var key = storages.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var storageType = t.dtype switch
            {
                TorchSharp.torch.ScalarType.Float32 => "FloatStorage",
                TorchSharp.torch.ScalarType.Float16 => "HalfStorage",
                TorchSharp.torch.ScalarType.BFloat16 => "BFloat16Storage",
                TorchSharp.torch.ScalarType.Int64 => "LongStorage",
                var other => throw new NotSupportedException(other.ToString()),
            };
            using var c = t.contiguous();
            var strides = new long[t.dim()];
            for (long i = t.dim() - 1, s = 1; i >= 0; s *= t.shape[i], i--)
                strides[i] = s;
            w.Str(name).Tensor(key, storageType, "cuda:0", t.numel(), 0, t.shape, strides);
            storages[key] = c.bytes.ToArray();
        }
        w.SetItems().Stop();
        WriteZip(path, w.ToArray(), storages, root: Path.GetFileNameWithoutExtension(path));
    }

    /// <summary>A torch.save-style zip: root/data.pkl, root/data/&lt;key&gt;, root/version (+ byteorder).</summary>
    public static void WriteZip(string path, byte[] pickle, IReadOnlyDictionary<string, byte[]> storages,
        CompressionLevel level = CompressionLevel.NoCompression, string root = "archive", string? byteorder = null)
    {
        using var fs = File.Create(path);
        using var zip = new ZipArchive(fs, ZipArchiveMode.Create);
        void Add(string name, byte[] data)
        {
            var e = zip.CreateEntry($"{root}/{name}", level);
            using var s = e.Open();
            s.Write(data);
        }
        Add("data.pkl", pickle);
        if (byteorder is not null)
            Add("byteorder", Encoding.ASCII.GetBytes(byteorder));
        foreach (var (k, v) in storages)
            Add($"data/{k}", v);
        Add("version", "3\n"u8.ToArray());
    }
}
