using TorchSharp;
using System.Collections;
using static TorchSharp.torch;

namespace Dloral.Checkpoints;

/// <summary>A Python tuple from a pickle (structural equality, so it can be a dict key).</summary>
public sealed class PyTuple(object?[] items) : IReadOnlyList<object?>, IEquatable<PyTuple>
{
    public static readonly PyTuple Empty = new([]);
    private readonly object?[] _items = items;

    public object? this[int index] => _items[index];
    public int Count => _items.Length;
    public IEnumerator<object?> GetEnumerator() => ((IEnumerable<object?>)_items).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => _items.GetEnumerator();

    public bool Equals(PyTuple? other) =>
        other is not null && _items.Length == other._items.Length && _items.Zip(other._items).All(p => Equals(p.First, p.Second));

    public override bool Equals(object? obj) => Equals(obj as PyTuple);

    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var i in _items)
            h.Add(i);
        return h.ToHashCode();
    }

    public override string ToString() => $"({string.Join(", ", _items.Select(i => i?.ToString() ?? "None"))})";
}

/// <summary>A Python dict or collections.OrderedDict from a pickle: insertion-ordered.</summary>
public sealed class PyDict : OrderedDictionary<object, object?>
{
    /// <summary>True when the pickle built it as collections.OrderedDict.</summary>
    public bool IsOrderedDict { get; init; }
}

/// <summary>A torch dtype constant pickled by name (e.g. <c>torch.float32</c>).</summary>
public sealed record PyDType(string Name, ScalarType ScalarType);

/// <summary>An allow-listed global as it sits on the unpickler stack before it is called.</summary>
public sealed record PyGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>
/// One storage of a torch.save file (<c>&lt;root&gt;/data/&lt;key&gt;</c>), loaded once and shared by
/// every tensor that views it — or, in a lazily opened checkpoint, read on demand.
/// </summary>
public sealed class TorchStorage
{
    private readonly Tensor? _data;
    private readonly Action<Tensor>? _reader;

    /// <summary>A loaded storage: <paramref name="data"/> is the flat 1-D CPU tensor of all its elements.</summary>
    public TorchStorage(string key, ScalarType dtype, string location, Tensor data)
    {
        Key = key;
        DType = dtype;
        Location = location;
        _data = data;
        NumElements = data.numel();
    }

    /// <summary>A lazy storage: <paramref name="reader"/> fills a flat contiguous CPU tensor of
    /// <paramref name="numel"/> elements with its bytes.</summary>
    internal TorchStorage(string key, ScalarType dtype, string location, long numel, Action<Tensor> reader)
    {
        Key = key;
        DType = dtype;
        Location = location;
        NumElements = numel;
        _reader = reader;
    }

    public string Key { get; }
    public ScalarType DType { get; }
    /// <summary>Where it was saved from ("cpu", "cuda:0"); it is always loaded on the CPU.</summary>
    public string Location { get; }
    public long NumElements { get; }
    /// <summary>False for the storages of a lazily opened checkpoint.</summary>
    public bool IsLoaded => _data is not null;

    /// <summary>The flat 1-D CPU tensor of all its elements (loaded storages only).</summary>
    public Tensor Data => _data ?? throw new InvalidOperationException($"storage '{Key}' belongs to a lazily opened checkpoint; use TorchTensorRef");

    /// <summary>Fills a flat contiguous CPU tensor of <see cref="NumElements"/> elements of <see cref="DType"/>.</summary>
    internal void ReadInto(Tensor flat)
    {
        if (_data is not null)
        {
            flat.copy_(_data);
            return;
        }
        _reader!(flat);
    }
}

/// <summary>A tensor of a lazily opened checkpoint: its metadata, with the bytes read on demand.</summary>
public sealed class TorchTensorRef(TorchStorage storage, long offset, long[] shape, long[] stride)
{
    public TorchStorage Storage { get; } = storage;
    public long Offset { get; } = offset;
    public long[] Shape { get; } = shape;
    public long[] Stride { get; } = stride;
    public ScalarType DType => Storage.DType;
    public long NumElements => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>True when the tensor is exactly its whole storage, contiguous (the usual state_dict case).</summary>
    public bool IsWholeStorage
    {
        get
        {
            if (Offset != 0 || NumElements != Storage.NumElements)
                return false;
            long expected = 1;
            for (var i = Shape.Length - 1; i >= 0; i--)
            {
                if (Shape[i] != 1 && Stride[i] != expected)
                    return false;
                expected *= Shape[i];
            }
            return true;
        }
    }

    /// <summary>A new contiguous CPU tensor owned by the caller.</summary>
    public Tensor Load()
    {
        var result = empty(Shape, DType);
        try
        {
            ReadInto(result);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>Fills <paramref name="target"/> (same shape; any dtype/device). A whole-storage tensor
    /// read into a contiguous CPU target of its dtype goes straight from the file into it.</summary>
    public void ReadInto(Tensor target)
    {
        if (!target.shape.SequenceEqual(Shape))
            throw new ArgumentException($"shape [{string.Join(",", Shape)}] cannot fill a tensor of shape [{string.Join(",", target.shape)}]");
        using var noGrad = no_grad();
        if (IsWholeStorage && target.dtype == DType && target.device_type == DeviceType.CPU && target.is_contiguous())
        {
            using var flatTarget = target.view(-1);
            Storage.ReadInto(flatTarget);
            return;
        }
        using var flat = empty(Storage.NumElements, DType);
        Storage.ReadInto(flat);
        using var view = flat.as_strided(Shape, Stride, Offset);
        target.copy_(view);
    }
}
