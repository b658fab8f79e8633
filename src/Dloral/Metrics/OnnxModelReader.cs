using System.Text;

namespace Dloral.Metrics;

/// <summary>One ONNX graph node: operator, inputs, outputs and the attributes the importer needs.</summary>
public sealed record OnnxNode(string OpType, string Name, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs,
    IReadOnlyDictionary<string, long[]> IntAttributes, IReadOnlyDictionary<string, float> FloatAttributes);

/// <summary>One float32 initializer (weight) of an ONNX graph.</summary>
public sealed record OnnxInitializer(string Name, long[] Dims, float[] Data);

/// <summary>
/// A minimal ONNX reader: decodes just enough of the protobuf wire format (ModelProto → GraphProto → nodes and
/// float initializers) to import weights, without a protobuf dependency. Field numbers are those of onnx.proto.
/// </summary>
public sealed class OnnxModelReader
{
    public List<OnnxNode> Nodes { get; } = [];
    public Dictionary<string, OnnxInitializer> Initializers { get; } = new(StringComparer.Ordinal);

    /// <summary>Reads <paramref name="path"/>; throws <see cref="InvalidDataException"/> naming the file when malformed.</summary>
    public static OnnxModelReader Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"ONNX model not found: {path}", path);
        var reader = new OnnxModelReader();
        try
        {
            var bytes = File.ReadAllBytes(path);
            bool sawGraph = false;
            foreach (var f in Fields(bytes))
                if (f.Number == 7 && f.WireType == 2) { reader.ReadGraph(f.Bytes(bytes)); sawGraph = true; }
            if (!sawGraph) throw new InvalidDataException("no graph (ModelProto field 7)");
        }
        catch (Exception e) when (e is IndexOutOfRangeException or ArgumentOutOfRangeException or InvalidDataException)
        {
            throw new InvalidDataException($"{path}: not a readable ONNX model ({e.Message})", e);
        }
        return reader;
    }

    private void ReadGraph(byte[] graph)
    {
        var copy = graph;
        foreach (var f in Fields(copy))
        {
            if (f.WireType != 2) continue;
            if (f.Number == 1) Nodes.Add(ReadNode(f.Bytes(copy)));
            else if (f.Number == 5) { var t = ReadTensor(f.Bytes(copy)); Initializers[t.Name] = t; }
        }
    }

    private static OnnxNode ReadNode(byte[] node)
    {
        var inputs = new List<string>();
        var outputs = new List<string>();
        string name = "", op = "";
        var ints = new Dictionary<string, long[]>();
        var floats = new Dictionary<string, float>();
        foreach (var f in Fields(node))
        {
            switch (f.Number)
            {
                case 1: inputs.Add(f.Text(node)); break;
                case 2: outputs.Add(f.Text(node)); break;
                case 3: name = f.Text(node); break;
                case 4: op = f.Text(node); break;
                case 5: ReadAttribute(f.Bytes(node), ints, floats); break;
            }
        }
        return new OnnxNode(op, name, inputs, outputs, ints, floats);
    }

    private static void ReadAttribute(byte[] attr, Dictionary<string, long[]> ints, Dictionary<string, float> floats)
    {
        string name = "";
        var values = new List<long>();
        float? f32 = null;
        foreach (var f in Fields(attr))
        {
            switch (f.Number)
            {
                case 1: name = f.Text(attr); break;
                case 2 when f.WireType == 5: f32 = BitConverter.ToSingle(attr, f.Offset); break;
                case 3 when f.WireType == 0: values.Add((long)f.Varint); break;
                case 8 when f.WireType == 0: values.Add((long)f.Varint); break;
                case 8 when f.WireType == 2: values.AddRange(PackedVarints(f.Bytes(attr))); break;
            }
        }
        if (f32 is not null) floats[name] = f32.Value;
        if (values.Count > 0) ints[name] = [.. values];
    }

    private static OnnxInitializer ReadTensor(byte[] t)
    {
        var dims = new List<long>();
        string name = "";
        long dataType = 0;
        float[]? data = null;
        foreach (var f in Fields(t))
        {
            switch (f.Number)
            {
                case 1 when f.WireType == 0: dims.Add((long)f.Varint); break;
                case 1 when f.WireType == 2: dims.AddRange(PackedVarints(f.Bytes(t))); break;
                case 2: dataType = (long)f.Varint; break;
                case 4 when f.WireType == 2: data = FloatsOf(t.AsSpan(f.Offset, f.Length)); break; // packed float_data
                case 8: name = f.Text(t); break;
                case 9: data = FloatsOf(t.AsSpan(f.Offset, f.Length)); break; // raw_data, little-endian
                case 13 or 14: throw new InvalidDataException($"initializer '{name}' uses external data, which is not supported");
            }
        }
        if (dataType != 1) throw new InvalidDataException($"initializer '{name}' has data type {dataType}, only FLOAT (1) is supported");
        data ??= [];
        long expected = dims.Aggregate(1L, (a, b) => a * b);
        if (data.Length != expected)
            throw new InvalidDataException($"initializer '{name}' has {data.Length} values for shape [{string.Join(",", dims)}]");
        return new OnnxInitializer(name, [.. dims], data);
    }

    private static float[] FloatsOf(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length % 4 != 0) throw new InvalidDataException("float data length is not a multiple of 4");
        var result = new float[bytes.Length / 4];
        bytes.CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(result.AsSpan()));
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts");
        return result;
    }

    private static IEnumerable<long> PackedVarints(byte[] bytes)
    {
        int pos = 0;
        while (pos < bytes.Length) yield return (long)ReadVarint(bytes, ref pos);
    }

    private readonly record struct Field(int Number, int WireType, ulong Varint, int Offset, int Length)
    {
        public byte[] Bytes(byte[] source) => source.AsSpan(Offset, Length).ToArray();
        public string Text(byte[] source) => Encoding.UTF8.GetString(source, Offset, Length);
    }

    private static IEnumerable<Field> Fields(byte[] buffer)
    {
        int pos = 0;
        while (pos < buffer.Length)
        {
            ulong key = ReadVarint(buffer, ref pos);
            int number = (int)(key >> 3), wire = (int)(key & 7);
            switch (wire)
            {
                case 0: yield return new Field(number, wire, ReadVarint(buffer, ref pos), 0, 0); break;
                case 1: yield return new Field(number, wire, 0, pos, 8); pos += 8; break;
                case 2:
                    int len = checked((int)ReadVarint(buffer, ref pos));
                    if (len < 0 || pos + len > buffer.Length) throw new InvalidDataException($"field {number} runs past the end");
                    yield return new Field(number, wire, 0, pos, len);
                    pos += len;
                    break;
                case 5: yield return new Field(number, wire, 0, pos, 4); pos += 4; break;
                default: throw new InvalidDataException($"unsupported protobuf wire type {wire} at byte {pos}");
            }
        }
    }

    private static ulong ReadVarint(byte[] buffer, ref int pos)
    {
        ulong result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            byte b = buffer[pos++];
            result |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80) return result;
        }
        throw new InvalidDataException("malformed varint");
    }
}
