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
/// every tensor that views it.
/// </summary>
public sealed class TorchStorage(string key, ScalarType dtype, string location, Tensor data)
{
    public string Key { get; } = key;
    public ScalarType DType { get; } = dtype;
    /// <summary>Where it was saved from ("cpu", "cuda:0"); it is always loaded on the CPU.</summary>
    public string Location { get; } = location;
    /// <summary>The flat 1-D CPU tensor of all its elements.</summary>
    public Tensor Data { get; } = data;
    public long NumElements => Data.numel();
}
