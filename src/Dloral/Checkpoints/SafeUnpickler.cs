using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;
using static TorchSharp.torch;

namespace Dloral.Checkpoints;

/// <summary>
/// A minimal pickle virtual machine (protocols 0–5, the opcodes <c>torch.save</c> and ordinary
/// data pickles use) that can only build data: dict, list, tuple, str, int, float, bool, None,
/// bytes, and tensors (or <see cref="TorchTensorRef"/>s for lazy storages) through an allow-list of torch rebuild functions — like PyTorch's
/// <c>weights_only=True</c>. Any other global (<c>os.system</c>, <c>builtins.eval</c>,
/// <c>subprocess.Popen</c>, ...) is refused by name the moment the pickle names it; no Python
/// semantics are ever executed, allowed globals map to fixed C# implementations.
/// </summary>
public sealed class SafeUnpickler
{
    private static readonly Dictionary<string, ScalarType> StorageTypes = new(StringComparer.Ordinal)
    {
        ["FloatStorage"] = ScalarType.Float32,
        ["DoubleStorage"] = ScalarType.Float64,
        ["HalfStorage"] = ScalarType.Float16,
        ["BFloat16Storage"] = ScalarType.BFloat16,
        ["LongStorage"] = ScalarType.Int64,
        ["IntStorage"] = ScalarType.Int32,
        ["ShortStorage"] = ScalarType.Int16,
        ["CharStorage"] = ScalarType.Int8,
        ["ByteStorage"] = ScalarType.Byte,
        ["BoolStorage"] = ScalarType.Bool,
        ["UntypedStorage"] = ScalarType.Byte,
    };

    private static readonly Dictionary<string, ScalarType> DTypes = new(StringComparer.Ordinal)
    {
        ["float32"] = ScalarType.Float32, ["float"] = ScalarType.Float32,
        ["float64"] = ScalarType.Float64, ["double"] = ScalarType.Float64,
        ["float16"] = ScalarType.Float16, ["half"] = ScalarType.Float16,
        ["bfloat16"] = ScalarType.BFloat16,
        ["int64"] = ScalarType.Int64, ["long"] = ScalarType.Int64,
        ["int32"] = ScalarType.Int32, ["int"] = ScalarType.Int32,
        ["int16"] = ScalarType.Int16, ["short"] = ScalarType.Int16,
        ["int8"] = ScalarType.Int8, ["uint8"] = ScalarType.Byte,
        ["bool"] = ScalarType.Bool,
    };

    // The callables a tensor checkpoint needs, by "module.name". Nothing else can be called.
    private static readonly HashSet<string> Callables = new(StringComparer.Ordinal)
    {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._tensor._rebuild_from_type_v2",
        "torch.Size",
        "torch.device",
        "_codecs.encode",
    };

    // Types that only appear as arguments (never called).
    private static readonly HashSet<string> TypeMarkers = new(StringComparer.Ordinal)
    {
        "torch.Tensor",
        "torch._tensor.Tensor",
        "torch.nn.parameter.Parameter",
    };

    /// <summary>The element type of a torch storage class name (FloatStorage → Float32, ...).</summary>
    internal static bool TryStorageDType(string name, out ScalarType dtype) => StorageTypes.TryGetValue(name, out dtype);

    /// <summary>True when <c>module.name</c> is on the allow-list.</summary>
    public static bool IsAllowed(string module, string name)
    {
        var full = $"{module}.{name}";
        return Callables.Contains(full) || TypeMarkers.Contains(full)
            || (module == "torch" && (StorageTypes.ContainsKey(name) || DTypes.ContainsKey(name)));
    }

    private readonly byte[] _data;
    private readonly string _source;
    private readonly Func<object?, object?> _persistentLoad;
    private readonly List<object?> _stack = [];
    private readonly Stack<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = [];
    private readonly List<Tensor> _createdTensors = [];
    private int _pos;

    /// <param name="data">The pickle bytes.</param>
    /// <param name="source">What to name in errors (e.g. "model.pkl:model/data.pkl").</param>
    /// <param name="persistentLoad">Resolves persistent ids (torch.save storages); null refuses them.</param>
    public SafeUnpickler(byte[] data, string source, Func<object?, object?>? persistentLoad = null)
    {
        _data = data;
        _source = source;
        _persistentLoad = persistentLoad ?? (pid => throw Error($"persistent id {Describe(pid)} but no persistent loader"));
    }

    /// <summary>Tensors (views) this unpickler created; the caller owns and disposes them.</summary>
    public IReadOnlyList<Tensor> CreatedTensors => _createdTensors;

    /// <summary>Unpickles a whole byte array.</summary>
    public static object? Loads(byte[] data, string source = "pickle", Func<object?, object?>? persistentLoad = null) =>
        new SafeUnpickler(data, source, persistentLoad).Load();

    private CheckpointFormatException Error(string problem) => new(_source, $"pickle offset {_pos}: {problem}");

    /// <summary>Runs the pickle up to STOP and returns the object it built. Every failure is a
    /// <see cref="CheckpointFormatException"/> (or <see cref="UnsafePickleException"/>) naming the offset.</summary>
    public object? Load()
    {
        try
        {
            return Run();
        }
        catch (Exception e) when (e is not CheckpointFormatException and not OutOfMemoryException)
        {
            // Malformed values (bad numbers, overflowing sizes, ...) in a corrupt or crafted file.
            throw new CheckpointFormatException(_source, $"pickle offset {_pos}: malformed pickle ({e.GetType().Name}: {e.Message})", e);
        }
    }

    private object? Run()
    {
        while (true)
        {
            if (_pos >= _data.Length)
                throw Error("the pickle ends without a STOP opcode (truncated?)");
            var opPos = _pos;
            var op = _data[_pos++];
            switch (op)
            {
                case 0x80: // PROTO
                    var proto = ReadByte();
                    if (proto > 5)
                        throw Error($"unsupported pickle protocol {proto}");
                    break;
                case 0x95: // FRAME: 8-byte length; frames are only a buffering hint
                    ReadBytes(8);
                    break;
                case 0x2e: // STOP: the result is the top of the stack (as in CPython)
                    if (_stack.Count == 0)
                        throw Error("STOP with an empty stack");
                    return _stack[^1];

                // ---- constants and scalars
                case 0x4e: Push(null); break; // NONE
                case 0x88: Push(true); break; // NEWTRUE
                case 0x89: Push(false); break; // NEWFALSE
                case 0x4a: Push((long)BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4))); break; // BININT
                case 0x4b: Push((long)ReadByte()); break; // BININT1
                case 0x4d: Push((long)BinaryPrimitives.ReadUInt16LittleEndian(ReadBytes(2))); break; // BININT2
                case 0x8a: Push(DecodeLong(ReadBytes(ReadByte()))); break; // LONG1
                case 0x8b: // LONG4
                    Push(DecodeLong(ReadBytes(ReadLength(BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4))))));
                    break;
                case 0x47: Push(BinaryPrimitives.ReadDoubleBigEndian(ReadBytes(8))); break; // BINFLOAT
                case 0x49: Push(ParseIntOpcode(ReadLine())); break; // INT
                case 0x4c: Push(ParseTextLong(ReadLine())); break; // LONG
                case 0x46: Push(double.Parse(ReadLine(), NumberStyles.Float, CultureInfo.InvariantCulture)); break; // FLOAT

                // ---- strings and bytes
                case 0x58: Push(Utf8(ReadBytes(ReadLength(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)))))); break; // BINUNICODE
                case 0x8c: Push(Utf8(ReadBytes(ReadByte()))); break; // SHORT_BINUNICODE
                case 0x8d: Push(Utf8(ReadBytes(ReadLength(BinaryPrimitives.ReadUInt64LittleEndian(ReadBytes(8)))))); break; // BINUNICODE8
                case 0x56: Push(RawUnicodeEscape(ReadLineBytes())); break; // UNICODE
                case 0x42: Push(ReadBytes(ReadLength(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)))).ToArray()); break; // BINBYTES
                case 0x43: Push(ReadBytes(ReadByte()).ToArray()); break; // SHORT_BINBYTES
                case 0x8e: Push(ReadBytes(ReadLength(BinaryPrimitives.ReadUInt64LittleEndian(ReadBytes(8)))).ToArray()); break; // BINBYTES8
                case 0x54: Push(Py2String(ReadBytes(ReadLength(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)))))); break; // BINSTRING
                case 0x55: Push(Py2String(ReadBytes(ReadByte()))); break; // SHORT_BINSTRING
                case 0x53: Push(ParseQuoted(ReadLine())); break; // STRING

                // ---- containers
                case 0x7d: Push(new PyDict()); break; // EMPTY_DICT
                case 0x5d: Push(new List<object?>()); break; // EMPTY_LIST
                case 0x29: Push(PyTuple.Empty); break; // EMPTY_TUPLE
                case 0x8f: Push(new HashSet<object?>()); break; // EMPTY_SET
                case 0x28: _marks.Push(_stack.Count); break; // MARK
                case 0x74: Push(new PyTuple(PopMark().ToArray())); break; // TUPLE
                case 0x85: Push(new PyTuple([Pop()])); break; // TUPLE1
                case 0x86: { var b = Pop(); var a = Pop(); Push(new PyTuple([a, b])); break; } // TUPLE2
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new PyTuple([a, b, c])); break; } // TUPLE3
                case 0x6c: Push(PopMark()); break; // LIST
                case 0x64: // DICT
                {
                    var items = PopMark();
                    var d = new PyDict();
                    SetItems(d, items);
                    Push(d);
                    break;
                }
                case 0x91: Push(new HashSet<object?>(PopMark())); break; // FROZENSET
                case 0x61: { var v = Pop(); AsList(Peek(), "APPEND").Add(v); break; } // APPEND
                case 0x65: { var items = PopMark(); AsList(Peek(), "APPENDS").AddRange(items); break; } // APPENDS
                case 0x73: // SETITEM
                {
                    var v = Pop();
                    var k = Pop();
                    SetItems(AsDict(Peek(), "SETITEM"), [k, v]);
                    break;
                }
                case 0x75: { var items = PopMark(); SetItems(AsDict(Peek(), "SETITEMS"), items); break; } // SETITEMS
                case 0x90: // ADDITEMS
                {
                    var items = PopMark();
                    if (Peek() is not HashSet<object?> set)
                        throw Error($"ADDITEMS on {TypeName(Peek())}");
                    foreach (var i in items)
                        set.Add(i);
                    break;
                }

                // ---- stack and memo
                case 0x30: Pop(); break; // POP
                case 0x31: PopMark(); break; // POP_MARK
                case 0x32: Push(Peek()); break; // DUP
                case 0x71: _memo[ReadByte()] = Peek(); break; // BINPUT
                case 0x72: _memo[BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4))] = Peek(); break; // LONG_BINPUT
                case 0x70: _memo[ParseMemoKey(ReadLine())] = Peek(); break; // PUT
                case 0x94: _memo[_memo.Count] = Peek(); break; // MEMOIZE
                case 0x68: Push(MemoGet(ReadByte())); break; // BINGET
                case 0x6a: Push(MemoGet(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)))); break; // LONG_BINGET
                case 0x67: Push(MemoGet(ParseMemoKey(ReadLine()))); break; // GET

                // ---- globals and calls: the security boundary
                case 0x63: // GLOBAL "module\nname\n"
                {
                    var module = ReadLine();
                    var name = ReadLine();
                    Push(ResolveGlobal(module, name, "GLOBAL"));
                    break;
                }
                case 0x93: // STACK_GLOBAL
                {
                    var name = Pop();
                    var module = Pop();
                    if (module is not string m || name is not string n)
                        throw Error("STACK_GLOBAL needs two strings");
                    Push(ResolveGlobal(m, n, "STACK_GLOBAL"));
                    break;
                }
                case 0x69: // INST "module\nname\n": class instantiation of protocol 0
                {
                    var module = ReadLine();
                    var name = ReadLine();
                    ResolveGlobal(module, name, "INST");
                    throw Error($"INST of {module}.{name} is not supported");
                }
                case 0x6f: // OBJ
                {
                    var items = PopMark();
                    var cls = items.Count > 0 ? items[0] : null;
                    throw Error($"OBJ of {Describe(cls)} is not supported");
                }
                case 0x52: // REDUCE
                {
                    var args = Pop();
                    var callable = Pop();
                    Push(Call(callable, args as PyTuple ?? throw Error($"REDUCE arguments must be a tuple, got {TypeName(args)}"), "REDUCE"));
                    break;
                }
                case 0x81: // NEWOBJ: cls.__new__(cls, *args)
                {
                    var args = Pop();
                    var cls = Pop();
                    Push(Call(cls, args as PyTuple ?? throw Error("NEWOBJ arguments must be a tuple"), "NEWOBJ"));
                    break;
                }
                case 0x92: // NEWOBJ_EX
                {
                    var kwargs = Pop();
                    var args = Pop();
                    var cls = Pop();
                    if (kwargs is PyDict { Count: > 0 })
                        throw Error($"NEWOBJ_EX with keyword arguments for {Describe(cls)} is not supported");
                    Push(Call(cls, args as PyTuple ?? throw Error("NEWOBJ_EX arguments must be a tuple"), "NEWOBJ_EX"));
                    break;
                }
                case 0x62: // BUILD: obj.__setstate__(state)
                {
                    var state = Pop();
                    Build(Peek(), state);
                    break;
                }
                case 0x51: Push(_persistentLoad(Pop())); break; // BINPERSID
                case 0x50: Push(_persistentLoad(ReadLine())); break; // PERSID

                case 0x82 or 0x83 or 0x84:
                    throw Error("EXT opcodes (the copyreg extension registry) are not supported");
                case 0x96 or 0x97 or 0x98:
                    throw Error("out-of-band buffers (pickle protocol 5) are not supported");
                default:
                    throw Error($"unknown or unsupported opcode 0x{op:x2} at offset {opPos}");
            }
        }
    }

    private object? ResolveGlobal(string module, string name, string opcode)
    {
        if (!IsAllowed(module, name))
            throw new UnsafePickleException(_source, module, name, opcode);
        if (module == "torch" && DTypes.TryGetValue(name, out var dt))
            return new PyDType(name, dt);
        return new PyGlobal(module, name);
    }

    private object? Call(object? callable, PyTuple args, string opcode)
    {
        if (callable is not PyGlobal g)
            throw Error($"{opcode} of a {TypeName(callable)}, not an allowed global");
        var full = g.ToString();
        if (!Callables.Contains(full))
            throw Error($"{opcode}: {full} cannot be called");
        return full switch
        {
            "collections.OrderedDict" => NewOrderedDict(args),
            "torch._utils._rebuild_tensor_v2" => RebuildTensor(args, 6, 7),
            "torch._utils._rebuild_tensor" => RebuildTensor(args, 4, 4),
            "torch._utils._rebuild_parameter" => RebuildParameter(args, 3),
            "torch._utils._rebuild_parameter_with_state" => RebuildParameter(args, 4),
            "torch._tensor._rebuild_from_type_v2" => RebuildFromType(args),
            "torch.Size" => args.Count == 1 && args[0] is PyTuple t ? t : args,
            "torch.device" => string.Join(":", args.Select(a => a?.ToString())),
            "_codecs.encode" => CodecsEncode(args),
            _ => throw Error($"{full} cannot be called"),
        };
    }

    private PyDict NewOrderedDict(PyTuple args)
    {
        var d = new PyDict { IsOrderedDict = true };
        if (args.Count == 0)
            return d;
        if (args.Count == 1 && args[0] is IEnumerable<object?> pairs)
        {
            foreach (var p in pairs)
            {
                if (p is not IReadOnlyList<object?> { Count: 2 } kv)
                    throw Error("OrderedDict(...) needs (key, value) pairs");
                SetItems(d, [kv[0], kv[1]]);
            }
            return d;
        }
        throw Error($"OrderedDict called with {args.Count} arguments");
    }

    private byte[] CodecsEncode(PyTuple args)
    {
        if (args.Count < 1 || args.Count > 2 || args[0] is not string s)
            throw Error("_codecs.encode needs (str, encoding)");
        var encoding = args.Count == 2 ? args[1] as string : "utf-8";
        return encoding?.ToLowerInvariant() switch
        {
            "latin1" or "latin-1" or "iso-8859-1" => Encoding.Latin1.GetBytes(s),
            "utf-8" or "utf8" => Encoding.UTF8.GetBytes(s),
            var other => throw Error($"_codecs.encode with encoding '{other}' is not supported"),
        };
    }

    // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    private object RebuildTensor(PyTuple args, int minArgs, int maxArgs)
    {
        if (args.Count < minArgs || args.Count > maxArgs)
            throw Error($"tensor rebuild expects {minArgs}..{maxArgs} arguments, got {args.Count}");
        if (args[0] is not TorchStorage storage)
            throw Error($"tensor rebuild: the storage argument is a {TypeName(args[0])}");
        var offset = AsLong(args[1], "storage_offset");
        var size = AsLongs(args[2], "size");
        var stride = AsLongs(args[3], "stride");
        if (size.Length != stride.Length)
            throw Error($"tensor rebuild: size [{string.Join(",", size)}] and stride [{string.Join(",", stride)}] differ in rank");
        if (offset < 0 || size.Any(s => s < 0) || stride.Any(s => s < 0))
            throw Error($"tensor rebuild: negative offset, size or stride (offset {offset}, size [{string.Join(",", size)}], stride [{string.Join(",", stride)}])");
        // The last element a view touches must lie inside its storage.
        if (size.All(s => s > 0))
        {
            var last = offset;
            for (var i = 0; i < size.Length; i++)
                last = checked(last + (size[i] - 1) * stride[i]);
            if (last >= storage.NumElements)
                throw Error($"tensor rebuild: a view with offset {offset}, size [{string.Join(",", size)}], stride [{string.Join(",", stride)}] " +
                            $"reaches element {last} but storage '{storage.Key}' has only {storage.NumElements} elements");
        }
        if (args.Count > 5 && args[5] is PyDict { Count: > 0 })
            throw Error("tensor rebuild: backward hooks are not supported");
        if (!storage.IsLoaded)
            return new TorchTensorRef(storage, offset, size, stride);
        var view = storage.Data.as_strided(size, stride, offset).DetachFromDisposeScope();
        _createdTensors.Add(view);
        return view;
    }

    // _rebuild_parameter(data, requires_grad, backward_hooks[, state]): the data tensor is what we need.
    private object RebuildParameter(PyTuple args, int count)
    {
        if (args.Count != count || args[0] is not (Tensor or TorchTensorRef))
            throw Error($"parameter rebuild expects {count} arguments starting with a tensor");
        return args[0]!;
    }

    // _rebuild_from_type_v2(func, new_type, args, state): func(*args), for plain Tensor/Parameter types.
    private object? RebuildFromType(PyTuple args)
    {
        if (args.Count != 4 || args[2] is not PyTuple inner)
            throw Error("_rebuild_from_type_v2 expects (func, type, args, state)");
        if (args[1] is not PyGlobal type || !TypeMarkers.Contains(type.ToString()))
            throw Error($"_rebuild_from_type_v2 to {Describe(args[1])} is not supported");
        var result = Call(args[0], inner, "_rebuild_from_type_v2");
        if (args[3] is PyDict { Count: > 0 })
            throw Error("_rebuild_from_type_v2 with Python attributes is not supported");
        return result;
    }

    private void Build(object? target, object? state)
    {
        var emptyState = state is null || state is PyDict { Count: 0 }
            || (state is PyTuple t && t.All(x => x is null || x is PyDict { Count: 0 }));
        if (emptyState && target is PyDict or Tensor or TorchTensorRef)
            return;
        throw Error($"BUILD (setstate) of a {TypeName(target)} with state {TypeName(state)} is not supported");
    }

    private void SetItems(PyDict d, IReadOnlyList<object?> items)
    {
        if (items.Count % 2 != 0)
            throw Error("odd number of items for a dict");
        for (var i = 0; i < items.Count; i += 2)
        {
            var key = items[i] ?? throw Error("None as a dict key is not supported");
            if (key is List<object?> or PyDict or HashSet<object?>)
                throw Error($"unhashable dict key of type {TypeName(key)}");
            d[key] = items[i + 1];
        }
    }

    private List<object?> AsList(object? o, string op) => o as List<object?> ?? throw Error($"{op} on a {TypeName(o)}");
    private PyDict AsDict(object? o, string op) => o as PyDict ?? throw Error($"{op} on a {TypeName(o)}");

    private long AsLong(object? o, string what) => o switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        BigInteger bi when bi >= long.MinValue && bi <= long.MaxValue => (long)bi,
        _ => throw Error($"{what} must be an int, got {TypeName(o)}"),
    };

    private long[] AsLongs(object? o, string what) => o switch
    {
        PyTuple t => t.Select(x => AsLong(x, what)).ToArray(),
        List<object?> l => l.Select(x => AsLong(x, what)).ToArray(),
        _ => throw Error($"{what} must be a tuple of ints, got {TypeName(o)}"),
    };

    internal static string TypeName(object? o) => o switch
    {
        null => "None",
        string => "str",
        long or BigInteger => "int",
        double => "float",
        bool => "bool",
        byte[] => "bytes",
        PyTuple => "tuple",
        List<object?> => "list",
        PyDict => "dict",
        Tensor or TorchTensorRef => "tensor",
        TorchStorage => "storage",
        PyGlobal g => $"global {g}",
        _ => o.GetType().Name,
    };

    private static string Describe(object? o) => o switch
    {
        PyGlobal g => g.ToString(),
        PyTuple t => t.ToString(),
        _ => TypeName(o),
    };

    // ---- stack helpers
    private void Push(object? o) => _stack.Add(o);

    private object? Pop()
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _stack.Count <= _marks.Peek()))
            throw Error("stack underflow");
        var o = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return o;
    }

    private object? Peek()
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _stack.Count <= _marks.Peek()))
            throw Error("stack underflow");
        return _stack[^1];
    }

    private List<object?> PopMark()
    {
        if (_marks.Count == 0)
            throw Error("no MARK on the stack");
        var m = _marks.Pop();
        var items = _stack.GetRange(m, _stack.Count - m);
        _stack.RemoveRange(m, _stack.Count - m);
        return items;
    }

    private object? MemoGet(long key) =>
        _memo.TryGetValue(key, out var v) ? v : throw Error($"memo key {key} was never stored");

    // ---- readers
    private byte ReadByte()
    {
        if (_pos >= _data.Length)
            throw Error("the pickle ends in the middle of an opcode (truncated)");
        return _data[_pos++];
    }

    private ReadOnlySpan<byte> ReadBytes(int n)
    {
        if (n < 0 || n > _data.Length - _pos)
            throw Error($"needs {n} bytes but only {_data.Length - _pos} remain (truncated)");
        var s = _data.AsSpan(_pos, n);
        _pos += n;
        return s;
    }

    private int ReadLength(long n) =>
        n < 0 || n > _data.Length - _pos ? throw Error($"length {n} runs past the end of the pickle ({_data.Length - _pos} bytes remain)") : (int)n;

    private int ReadLength(ulong n) => n > int.MaxValue ? ReadLength(-1L) : ReadLength((long)n);

    private ReadOnlySpan<byte> ReadLineBytes()
    {
        var end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0)
            throw Error("unterminated text line (truncated)");
        var s = _data.AsSpan(_pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    private string ReadLine() => Encoding.UTF8.GetString(ReadLineBytes());

    // Protocol 0 UNICODE: latin-1 bytes with \uXXXX and \UXXXXXXXX escapes.
    private string RawUnicodeEscape(ReadOnlySpan<byte> line)
    {
        var sb = new StringBuilder(line.Length);
        for (var i = 0; i < line.Length; i++)
        {
            if (line[i] == (byte)'\\' && i + 1 < line.Length && (line[i + 1] == (byte)'u' || line[i + 1] == (byte)'U'))
            {
                var digits = line[i + 1] == (byte)'u' ? 4 : 8;
                if (i + 2 + digits > line.Length
                    || !int.TryParse(Encoding.ASCII.GetString(line.Slice(i + 2, digits)), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var cp))
                    throw Error("bad \\u escape in a UNICODE string");
                sb.Append(char.ConvertFromUtf32(cp));
                i += 1 + digits;
            }
            else
                sb.Append((char)line[i]);
        }
        return sb.ToString();
    }

    private string Utf8(ReadOnlySpan<byte> b)
    {
        try
        {
            return new UTF8Encoding(false, true).GetString(b);
        }
        catch (DecoderFallbackException)
        {
            throw Error("a string is not valid UTF-8");
        }
    }

    // Python 2 str: torch.load decodes with utf-8; fall back to latin-1 for raw bytes.
    private static string Py2String(ReadOnlySpan<byte> b)
    {
        try
        {
            return new UTF8Encoding(false, true).GetString(b);
        }
        catch (DecoderFallbackException)
        {
            return Encoding.Latin1.GetString(b);
        }
    }

    private static object DecodeLong(ReadOnlySpan<byte> littleEndianTwosComplement)
    {
        if (littleEndianTwosComplement.Length == 0)
            return 0L;
        var v = new BigInteger(littleEndianTwosComplement, isUnsigned: false, isBigEndian: false);
        return v >= long.MinValue && v <= long.MaxValue ? (object)(long)v : v;
    }

    private object ParseIntOpcode(string s) => s switch
    {
        "00" => false,
        "01" => true,
        _ => long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : throw Error($"bad INT '{s}'"),
    };

    private long ParseMemoKey(string s) =>
        long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : throw Error($"bad integer '{s}'");

    private object ParseTextLong(string s)
    {
        var t = s.EndsWith('L') ? s[..^1] : s;
        return BigInteger.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v)
            ? v >= long.MinValue && v <= long.MaxValue ? (object)(long)v : v
            : throw Error($"bad LONG '{s}'");
    }

    private string ParseQuoted(string s)
    {
        if (s.Length >= 2 && (s[0] == '\'' || s[0] == '"') && s[^1] == s[0])
            return System.Text.RegularExpressions.Regex.Unescape(s[1..^1]);
        throw Error($"bad STRING {s}");
    }
}
