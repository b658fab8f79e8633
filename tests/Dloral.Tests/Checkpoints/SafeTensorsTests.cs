using System.Text;
using Dloral.Checkpoints;
using Dloral.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Tests.Checkpoints;

public class SafeTensorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("dloral-st-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string WriteRaw(string name, string headerJson, byte[] data, long? declaredLength = null)
    {
        var path = Path.Combine(_dir, name);
        var header = Encoding.UTF8.GetBytes(headerJson);
        using var fs = File.Create(path);
        fs.Write(BitConverter.GetBytes((ulong)(declaredLength ?? header.Length)));
        fs.Write(header);
        fs.Write(data);
        return path;
    }

    [Fact]
    public void Reads_golden_file_with_its_declared_shapes()
    {
        using var f = GoldenData.Open("tiny_unet", "case_b1_t1.safetensors");
        using var sample = f.Load("in.sample");
        Assert.Equal(new long[] { 1, 4, 16, 16 }, sample.shape);
        using var t = f.Load("in.timestep");
        Assert.Equal(ScalarType.Int64, t.dtype);
        Assert.Equal(1L, t[0].item<long>());
    }

    [Fact]
    public void Roundtrip_preserves_values_dtypes_and_metadata()
    {
        var path = Path.Combine(_dir, "rt.safetensors");
        using var a = arange(12, dtype: ScalarType.Float32).reshape(3, 4);
        using var b = tensor(new long[] { 7, -2 });
        using var c = randn(2, 3).to_type(ScalarType.BFloat16);
        SafeTensorsWriter.Save(path, new Dictionary<string, Tensor> { ["a"] = a, ["b"] = b, ["c"] = c },
            new Dictionary<string, string> { ["format"] = "pt" });
        using var f = SafeTensorsFile.Open(path);
        Assert.Equal("pt", f.Metadata["format"]);
        using var a2 = f.Load("a");
        using var b2 = f.Load("b");
        using var c2 = f.Load("c");
        TensorAssert.Equal(a, a2);
        TensorAssert.Equal(b, b2);
        TensorAssert.Equal(c, c2);
        using var target = zeros(3, 4, dtype: ScalarType.Float64);
        f.ReadInto("a", target);
        TensorAssert.Equal(a.to_type(ScalarType.Float64), target);
    }

    [Fact]
    public void Header_length_beyond_file_is_a_clear_error()
    {
        var path = WriteRaw("trunc.safetensors", "{}", [], declaredLength: 1_000_000);
        var ex = Assert.Throws<SafeTensorsException>(() => SafeTensorsFile.Open(path));
        Assert.Contains("trunc.safetensors", ex.Message);
        Assert.Contains("past the end", ex.Message);
    }

    [Fact]
    public void Offsets_outside_data_are_a_clear_error()
    {
        var path = WriteRaw("off.safetensors", """{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", new byte[8]);
        var ex = Assert.Throws<SafeTensorsException>(() => SafeTensorsFile.Open(path));
        Assert.Contains("outside the data section", ex.Message);
    }

    [Fact]
    public void Bad_json_and_unknown_dtype_are_clear_errors()
    {
        var bad = WriteRaw("bad.safetensors", "{not json", []);
        Assert.Contains("not valid JSON", Assert.Throws<SafeTensorsException>(() => SafeTensorsFile.Open(bad)).Message);
        var dt = WriteRaw("dt.safetensors", """{"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}""", new byte[1]);
        Assert.Contains("unknown dtype 'Q4'", Assert.Throws<SafeTensorsException>(() => SafeTensorsFile.Open(dt)).Message);
    }

    [Fact]
    public void Shape_mismatch_on_ReadInto_names_both_shapes()
    {
        var path = Path.Combine(_dir, "s.safetensors");
        using var a = ones(2, 3);
        SafeTensorsWriter.Save(path, new Dictionary<string, Tensor> { ["w"] = a });
        using var f = SafeTensorsFile.Open(path);
        using var wrong = zeros(3, 2);
        var ex = Assert.Throws<SafeTensorsException>(() => f.ReadInto("w", wrong));
        Assert.Contains("[2,3]", ex.Message);
        Assert.Contains("[3,2]", ex.Message);
    }
}
