using System.Diagnostics;
using System.IO.Compression;
using System.Numerics;
using Dloral.Checkpoints;
using Dloral.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Checkpoints;

public class TorchCheckpointTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("dloral-pkl-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathIn(string name) => Path.Combine(_dir, name);

    private static byte[] Floats(params float[] v) => v.SelectMany(BitConverter.GetBytes).ToArray();

    [Fact]
    public void Golden_model_pkl_loads_to_the_reference_tensors_bit_for_bit()
    {
        var path = GoldenData.PathOf("checkpoint", "model.pkl");
        var sw = Stopwatch.StartNew();
        using var ckpt = DloralCheckpoint.Load(path);
        sw.Stop();
        output.WriteLine($"golden model.pkl ({new FileInfo(path).Length / 1e6:F1} MB, {ckpt.StateDictUnet.Count + ckpt.StateDictBpp.Count} tensors) loaded in {sw.Elapsed.TotalMilliseconds:F0} ms");

        using var doc = GoldenData.Json("checkpoint", "case.json");
        var top = doc.RootElement.GetProperty("layout").GetProperty("top_level");
        Assert.Equal(top.GetProperty("lora_rank_unet_quality").GetProperty("value").GetInt32(), ckpt.LoraRankQuality);
        Assert.Equal(top.GetProperty("lora_rank_unet_consistency").GetProperty("value").GetInt32(), ckpt.LoraRankConsistency);
        string[] List(string key) => top.GetProperty(key).GetProperty("value").EnumerateArray().Select(e => e.GetString()!).ToArray();
        Assert.Equal(List("unet_lora_encoder_modules_quality"), ckpt.EncoderModulesQuality);
        Assert.Equal(List("unet_lora_decoder_modules_quality"), ckpt.DecoderModulesQuality);
        Assert.Equal(List("unet_lora_others_modules_quality"), ckpt.OthersModulesQuality);
        Assert.Equal(List("unet_lora_encoder_modules_consistency"), ckpt.EncoderModulesConsistency);
        Assert.Equal(List("unet_lora_decoder_modules_consistency"), ckpt.DecoderModulesConsistency);
        Assert.Equal(List("unet_lora_others_modules_consistency"), ckpt.OthersModulesConsistency);
        Assert.Equal(93, ckpt.AdapterTargets["default_encoder_quality"].Count);
        string[] Keys(string key) => top.GetProperty(key).GetProperty("keys").EnumerateArray().Select(e => e.GetString()!).ToArray();
        Assert.Equal(Keys("state_dict_unet"), ckpt.StateDictUnet.Keys);
        Assert.Equal(Keys("state_dict_bpp"), ckpt.StateDictBpp.Keys);
        Assert.Equal(8, ckpt.ConvInChannels);
        var summary = ckpt.Summary();
        output.WriteLine(summary);
        Assert.Contains("state_dict_unet 1712 tensors", summary);
        Assert.Contains("saved on cpu", summary);

        using (var lora = GoldenData.Open("lora", "unet_lora_state_dict.safetensors"))
        {
            var shared = 0;
            foreach (var name in lora.Entries.Keys)
            {
                Assert.True(ckpt.StateDictUnet.ContainsKey(name), name);
                using var expected = lora.Load(name);
                TensorAssert.Equal(expected, ckpt.StateDictUnet[name], name);
                shared++;
            }
            Assert.Equal(1712, shared);
        }
        using (var cfr = GoldenData.Open("cfr", "weights.safetensors"))
        {
            foreach (var name in cfr.Entries.Keys)
            {
                using var expected = cfr.Load(name);
                TensorAssert.Equal(expected, ckpt.StateDictBpp[name], name);
            }
            Assert.Equal(72, cfr.Entries.Count);
        }
    }

    [Fact]
    public void Golden_model_pkl_opened_lazily_streams_the_same_tensors()
    {
        var path = GoldenData.PathOf("checkpoint", "model.pkl");
        var sw = Stopwatch.StartNew();
        using var ckpt = DloralCheckpoint.Load(path, lazy: true);
        var open = sw.Elapsed.TotalMilliseconds;
        Assert.True(ckpt.IsLazy);
        Assert.Throws<InvalidOperationException>(() => ckpt.StateDictUnet);
        Assert.Equal(8, ckpt.ConvInChannels);
        Assert.Equal(1712, ckpt.UnetWeights.Names.Count());
        Assert.Equal(148, ckpt.CfrWeights.Names.Count());

        using var lora = GoldenData.Open("lora", "unet_lora_state_dict.safetensors");
        foreach (var name in lora.Entries.Keys)
        {
            using var expected = lora.Load(name);
            Assert.Equal(expected.shape, ckpt.UnetWeights.ShapeOf(name));
            using var target = empty(expected.shape, ScalarType.Float32);
            ckpt.UnetWeights.ReadInto(name, target);
            TensorAssert.Equal(expected, target, name);
        }
        // Converting on the way in (bf16 destination) works too.
        using var bf = empty(ckpt.CfrWeights.ShapeOf("spynet.mean"), ScalarType.BFloat16);
        ckpt.CfrWeights.ReadInto("spynet.mean", bf);
        using var cfr = GoldenData.Open("cfr", "weights.safetensors");
        using var mean = cfr.Load("spynet.mean");
        TensorAssert.Close(mean, bf.to(ScalarType.Float32), 1e-2, 1e-2, "spynet.mean as bf16");
        output.WriteLine($"lazy open of the golden model.pkl: {open:F0} ms; all 1712 UNet tensors streamed in {sw.Elapsed.TotalMilliseconds:F0} ms total");
    }

    [Theory]
    [InlineData("os", "system", "GLOBAL")]
    [InlineData("posix", "system", "GLOBAL")]
    [InlineData("builtins", "eval", "STACK_GLOBAL")]
    [InlineData("subprocess", "Popen", "INST")]
    [InlineData("torch", "load", "GLOBAL")]
    public void Hostile_globals_are_refused_by_name_and_nothing_runs(string module, string name, string opcode)
    {
        var marker = PathIn("pwned");
        var command = $"touch {marker}";
        var w = new PickleWriter().Proto(opcode == "STACK_GLOBAL" ? (byte)4 : (byte)2);
        // A harmless-looking prefix (a dict with one real tensor) so the refusal happens mid-file.
        w.EmptyDict().Mark().Str("w").Tensor("0", "FloatStorage", "cpu", 2, 0, [2], [1]).Str("x");
        switch (opcode)
        {
            case "GLOBAL": w.Global(module, name).Mark().Str(command).Tuple().Reduce(); break;
            case "STACK_GLOBAL": w.StackGlobal(module, name).Mark().Str(command).Tuple().Reduce(); break;
            case "INST": w.Inst(module, name); break;
        }
        w.SetItems().Stop();
        var path = PathIn("hostile.pkl");
        PickleWriter.WriteZip(path, w.ToArray(), new Dictionary<string, byte[]> { ["0"] = Floats(1, 2) });

        var e = Assert.Throws<UnsafePickleException>(() => TorchCheckpoint.Load(path));
        output.WriteLine(e.Message);
        Assert.Equal($"{module}.{name}", e.Global);
        Assert.Contains($"'{module}.{name}'", e.Message);
        Assert.Contains(path, e.Message);
        Assert.False(File.Exists(marker));
        // Straight through the VM, without any zip around it.
        var raw = new PickleWriter().Proto(2).Global(module, name).Mark().Str(command).Tuple().Reduce().Stop();
        Assert.Equal($"{module}.{name}", Assert.Throws<UnsafePickleException>(() => SafeUnpickler.Loads(raw.ToArray())).Global);
    }

    [Fact]
    public void Views_and_shared_storages_keep_their_sharing()
    {
        var w = new PickleWriter().Proto(2).EmptyDict().Mark();
        // a: [3,4] over storage 0; b: a transposed 2x2 window at offset 2 of the SAME storage;
        // c: a parameter-wrapped int64 tensor saved from the GPU; d: a big-endian-independent bf16? no: half.
        w.Str("a").Tensor("0", "FloatStorage", "cuda:0", 12, 0, [3, 4], [4, 1]);
        w.Str("b").Tensor("0", "FloatStorage", "cuda:0", 12, 2, [2, 2], [1, 4]);
        w.Str("c").Global("torch._utils", "_rebuild_parameter").Mark()
            .Tensor("1", "LongStorage", "cuda:0", 3, 0, [3], [1]).Op(0x88).Global("collections", "OrderedDict").EmptyTuple().Reduce().Tuple().Reduce();
        w.Str("scalar").Tensor("0", "FloatStorage", "cuda:0", 12, 11, [], []);
        w.SetItems().Stop();
        var storages = new Dictionary<string, byte[]>
        {
            ["0"] = Floats(Enumerable.Range(0, 12).Select(i => (float)i).ToArray()),
            ["1"] = new long[] { -5, 7, 1L << 40 }.SelectMany(BitConverter.GetBytes).ToArray(),
        };
        foreach (var level in new[] { CompressionLevel.NoCompression, CompressionLevel.Optimal })
        {
            var path = PathIn($"views-{level}.pkl");
            PickleWriter.WriteZip(path, w.ToArray(), storages, level, root: "my_model");
            using var ckpt = TorchCheckpoint.Load(path);
            Assert.Equal("my_model", ckpt.ArchiveRoot);
            Assert.Equal(2, ckpt.Storages.Count);
            Assert.Equal("cuda:0", ckpt.Storages["0"].Location);
            var sd = TorchCheckpoint.AsStateDict(ckpt.Root, "root", path);
            var a = sd["a"];
            var b = sd["b"];
            Assert.Equal(DeviceType.CPU, a.device_type);
            Assert.Equal(new long[] { 3, 4 }, a.shape);
            Assert.Equal(new float[] { 2, 6, 3, 7 }, b.contiguous().data<float>().ToArray());
            Assert.Equal(new long[] { -5, 7, 1L << 40 }, sd["c"].data<long>().ToArray());
            Assert.Equal(0, sd["scalar"].dim());
            Assert.Equal(11f, sd["scalar"].item<float>());
            // Shared storage: writing through one view is visible through the other.
            a[0, 2] = tensor(100f);
            Assert.Equal(100f, b[0, 0].item<float>());

            // Lazily: the same values, read on demand.
            using var lazy = TorchCheckpoint.Load(path, lazy: true);
            Assert.True(lazy.IsLazy);
            var root = Assert.IsType<PyDict>(lazy.Root);
            var refB = Assert.IsType<TorchTensorRef>(root["b"]);
            Assert.False(refB.IsWholeStorage);
            using var lb = refB.Load();
            Assert.Equal(new float[] { 2, 6, 3, 7 }, lb.data<float>().ToArray());
            var refA = Assert.IsType<TorchTensorRef>(root["a"]);
            Assert.True(refA.IsWholeStorage);
            using var la = refA.Load();
            Assert.Equal(Enumerable.Range(0, 12).Select(i => (float)i), la.data<float>().ToArray());
            using var lc = Assert.IsType<TorchTensorRef>(root["c"]).Load();
            Assert.Equal(new long[] { -5, 7, 1L << 40 }, lc.data<long>().ToArray());
            Assert.Throws<CheckpointFormatException>(() => TorchCheckpoint.AsStateDict(lazy.Root, "root", path));
            var source = TorchCheckpoint.AsWeightSource(lazy.Root, "root", path);
            using var scalar = empty([], ScalarType.Float64);
            source.ReadInto("scalar", scalar);
            Assert.Equal(11.0, scalar.item<double>());
        }
    }

    [Fact]
    public void Big_endian_byteorder_record_is_honoured()
    {
        var w = new PickleWriter().Proto(2).Tensor("0", "FloatStorage", "cpu", 2, 0, [2], [1]).Stop();
        var be = Floats(1.5f, -2f).Chunk(4).SelectMany(c => c.Reverse()).ToArray();
        var path = PathIn("be.pkl");
        PickleWriter.WriteZip(path, w.ToArray(), new Dictionary<string, byte[]> { ["0"] = be }, byteorder: "big");
        using var ckpt = TorchCheckpoint.Load(path);
        Assert.Equal(new[] { 1.5f, -2f }, ((Tensor)ckpt.Root!).data<float>().ToArray());
    }

    [Fact]
    public void Wrong_storage_sizes_are_clear_errors()
    {
        // numel larger than the data record
        var w = new PickleWriter().Proto(2).Tensor("0", "FloatStorage", "cpu", 100, 0, [100], [1]).Stop();
        var path = PathIn("short.pkl");
        PickleWriter.WriteZip(path, w.ToArray(), new Dictionary<string, byte[]> { ["0"] = Floats(1, 2, 3) });
        var e = Assert.Throws<CheckpointFormatException>(() => TorchCheckpoint.Load(path));
        output.WriteLine(e.Message);
        Assert.Contains("storage '0'", e.Message);
        Assert.Contains("12 bytes", e.Message);
        Assert.Contains("400 bytes", e.Message);

        // a view that reaches past its storage
        w = new PickleWriter().Proto(2).Tensor("0", "FloatStorage", "cpu", 3, 1, [2, 2], [2, 1]).Stop();
        PickleWriter.WriteZip(path, w.ToArray(), new Dictionary<string, byte[]> { ["0"] = Floats(1, 2, 3) });
        e = Assert.Throws<CheckpointFormatException>(() => TorchCheckpoint.Load(path));
        output.WriteLine(e.Message);
        Assert.Contains("reaches element 4", e.Message);

        // a storage record that does not exist
        w = new PickleWriter().Proto(2).Tensor("7", "FloatStorage", "cpu", 3, 0, [3], [1]).Stop();
        PickleWriter.WriteZip(path, w.ToArray(), new Dictionary<string, byte[]> { ["0"] = Floats(1, 2, 3) });
        e = Assert.Throws<CheckpointFormatException>(() => TorchCheckpoint.Load(path));
        Assert.Contains("archive/data/7", e.Message);
    }

    [Fact]
    public void Truncated_files_are_clear_errors()
    {
        var golden = File.ReadAllBytes(GoldenData.PathOf("checkpoint", "model.pkl"));
        var path = PathIn("truncated.pkl");
        File.WriteAllBytes(path, golden[..(golden.Length / 2)]);
        var e = Assert.Throws<CheckpointFormatException>(() => DloralCheckpoint.Load(path));
        output.WriteLine(e.Message);
        Assert.Contains("truncated or corrupt", e.Message);

        File.WriteAllBytes(path, golden[..3]);
        Assert.Throws<CheckpointFormatException>(() => TorchCheckpoint.Load(path));

        // A valid zip whose pickle stops half way.
        var w = new PickleWriter().Proto(2).EmptyDict().Mark().Str("a").Int(1).SetItems().Stop().ToArray();
        PickleWriter.WriteZip(path, w[..^3], new Dictionary<string, byte[]>());
        e = Assert.Throws<CheckpointFormatException>(() => TorchCheckpoint.Load(path));
        output.WriteLine(e.Message);
        Assert.Contains("truncated", e.Message);

        // A zip without data.pkl, and a file that is not a zip.
        using (var fs = File.Create(path))
        using (var zip = new ZipArchive(fs, ZipArchiveMode.Create))
            zip.CreateEntry("archive/other");
        Assert.Contains("no data.pkl", Assert.Throws<CheckpointFormatException>(() => TorchCheckpoint.Load(path)).Message);
        File.WriteAllText(path, "hello");
        Assert.Contains("not a torch.save zip", Assert.Throws<CheckpointFormatException>(() => TorchCheckpoint.Load(path)).Message);
    }

    [Fact]
    public void A_zip_that_is_not_a_dloral_checkpoint_names_what_is_missing()
    {
        var w = new PickleWriter().Proto(2).EmptyDict().Mark().Str("lora_rank_unet_quality").Int(4).Str("state_dict_unet").EmptyList().SetItems().Stop();
        var path = PathIn("partial.pkl");
        PickleWriter.WriteZip(path, w.ToArray(), new Dictionary<string, byte[]>());
        var e = Assert.Throws<CheckpointFormatException>(() => DloralCheckpoint.Load(path));
        output.WriteLine(e.Message);
        Assert.Contains("missing 'unet_lora_encoder_modules_quality'", e.Message);
        Assert.Contains("missing 'lora_rank_unet_consistency'", e.Message);
        Assert.Contains("state_dict_unet is a list", e.Message);
    }

    // Pickles of the same plain-data object written by CPython 3.11's pickle.dumps, protocols 0..5.
    public static TheoryData<int, string> PythonPickles => new()
    {
        { 0, "KGRwMApWYQpwMQoobHAyCkkxCmFJLTIKYUYzLjUKYUkwMQphSTAwCmFOYXNWYmlnCnAzCkwxMTgwNTkxNjIwNzE3NDExMzAzNDI0TApzVm5lZwpwNApMLTEwOTk1MTE2Mjc3NzZMCnNWcwpwNQpWaOlsbG8gXHUyNzEzCnA2CnNWYgpwNwpjX2NvZGVjcwplbmNvZGUKcDgKKFZcdTAwMDAB/wpwOQpWbGF0aW4xCnAxMAp0cDExClJwMTIKc1Z0CnAxMwooSTEKKEkyCkkzCnRwMTQKKHR0cDE1CnNWb2QKcDE2CmNjb2xsZWN0aW9ucwpPcmRlcmVkRGljdApwMTcKKHRScDE4ClZ4CnAxOQpJMQpzVnkKcDIwCihscDIxCkkxCmFJMgphc3MoSTEKVmsKcDIyCnRwMjMKVnR1cGxla2V5CnAyNApzVnNoYXJlZApwMjUKKGxwMjYKKGxwMjcKSTEKYUkyCmFhZzI3CmFzLg==" },
        { 1, "fXEAKFgBAAAAYXEBXXECKEsBSv7///9HQAwAAAAAAABJMDEKSTAwCk5lWAMAAABiaWdxA0wxMTgwNTkxNjIwNzE3NDExMzAzNDI0TApYAwAAAG5lZ3EETC0xMDk5NTExNjI3Nzc2TApYAQAAAHNxBVgKAAAAaMOpbGxvIOKck3EGWAEAAABicQdjX2NvZGVjcwplbmNvZGUKcQgoWAQAAAAAAcO/cQlYBgAAAGxhdGluMXEKdHELUnEMWAEAAAB0cQ0oSwEoSwJLA3RxDil0cQ9YAgAAAG9kcRBjY29sbGVjdGlvbnMKT3JkZXJlZERpY3QKcREpUnESKFgBAAAAeHETSwFYAQAAAHlxFF1xFShLAUsCZXUoSwFYAQAAAGtxFnRxF1gIAAAAdHVwbGVrZXlxGFgGAAAAc2hhcmVkcRldcRooXXEbKEsBSwJlaBtldS4=" },
        { 2, "gAJ9cQAoWAEAAABhcQFdcQIoSwFK/v///0dADAAAAAAAAIiJTmVYAwAAAGJpZ3EDigkAAAAAAAAAAEBYAwAAAG5lZ3EEigYAAAAAAP9YAQAAAHNxBVgKAAAAaMOpbGxvIOKck3EGWAEAAABicQdjX2NvZGVjcwplbmNvZGUKcQhYBAAAAAABw79xCVgGAAAAbGF0aW4xcQqGcQtScQxYAQAAAHRxDUsBSwJLA4ZxDimHcQ9YAgAAAG9kcRBjY29sbGVjdGlvbnMKT3JkZXJlZERpY3QKcREpUnESKFgBAAAAeHETSwFYAQAAAHlxFF1xFShLAUsCZXVLAVgBAAAAa3EWhnEXWAgAAAB0dXBsZWtleXEYWAYAAABzaGFyZWRxGV1xGihdcRsoSwFLAmVoG2V1Lg==" },
        { 3, "gAN9cQAoWAEAAABhcQFdcQIoSwFK/v///0dADAAAAAAAAIiJTmVYAwAAAGJpZ3EDigkAAAAAAAAAAEBYAwAAAG5lZ3EEigYAAAAAAP9YAQAAAHNxBVgKAAAAaMOpbGxvIOKck3EGWAEAAABicQdDAwAB/3EIWAEAAAB0cQlLAUsCSwOGcQoph3ELWAIAAABvZHEMY2NvbGxlY3Rpb25zCk9yZGVyZWREaWN0CnENKVJxDihYAQAAAHhxD0sBWAEAAAB5cRBdcREoSwFLAmV1SwFYAQAAAGtxEoZxE1gIAAAAdHVwbGVrZXlxFFgGAAAAc2hhcmVkcRVdcRYoXXEXKEsBSwJlaBdldS4=" },
        { 4, "gASVzQAAAAAAAAB9lCiMAWGUXZQoSwFK/v///0dADAAAAAAAAIiJTmWMA2JpZ5SKCQAAAAAAAAAAQIwDbmVnlIoGAAAAAAD/jAFzlIwKaMOpbGxvIOKck5SMAWKUQwMAAf+UjAF0lEsBSwJLA4aUKYeUjAJvZJSMC2NvbGxlY3Rpb25zlIwLT3JkZXJlZERpY3SUk5QpUpQojAF4lEsBjAF5lF2UKEsBSwJldUsBjAFrlIaUjAh0dXBsZWtleZSMBnNoYXJlZJRdlChdlChLAUsCZWgZZXUu" },
        { 5, "gAWVzQAAAAAAAAB9lCiMAWGUXZQoSwFK/v///0dADAAAAAAAAIiJTmWMA2JpZ5SKCQAAAAAAAAAAQIwDbmVnlIoGAAAAAAD/jAFzlIwKaMOpbGxvIOKck5SMAWKUQwMAAf+UjAF0lEsBSwJLA4aUKYeUjAJvZJSMC2NvbGxlY3Rpb25zlIwLT3JkZXJlZERpY3SUk5QpUpQojAF4lEsBjAF5lF2UKEsBSwJldUsBjAFrlIaUjAh0dXBsZWtleZSMBnNoYXJlZJRdlChdlChLAUsCZWgZZXUu" },
    };

    [Theory]
    [MemberData(nameof(PythonPickles))]
    public void Plain_data_pickles_of_every_protocol_round_trip(int protocol, string base64)
    {
        // {'a': [1,-2,3.5,True,False,None], 'big': 2**70, 'neg': -2**40, 's': 'héllo ✓', 'b': b'\x00\x01\xff',
        //  't': (1,(2,3),()), 'od': OrderedDict(x=1, y=[1,2]), (1,'k'): 'tuplekey', 'shared': [l, l]}
        var root = Assert.IsType<PyDict>(SafeUnpickler.Loads(Convert.FromBase64String(base64), $"protocol {protocol}"));
        Assert.Equal(new object[] { "a", "big", "neg", "s", "b", "t", "od", new PyTuple([1L, "k"]), "shared" }, root.Keys);
        Assert.Equal(new object?[] { 1L, -2L, 3.5, true, false, null }, Assert.IsType<List<object?>>(root["a"]));
        Assert.Equal(BigInteger.Pow(2, 70), root["big"]);
        Assert.Equal(-(1L << 40), root["neg"]);
        Assert.Equal("héllo ✓", root["s"]);
        Assert.Equal(new byte[] { 0, 1, 255 }, root["b"]);
        Assert.Equal(new PyTuple([1L, new PyTuple([2L, 3L]), PyTuple.Empty]), root["t"]);
        var od = Assert.IsType<PyDict>(root["od"]);
        Assert.True(od.IsOrderedDict);
        Assert.Equal(1L, od["x"]);
        Assert.Equal("tuplekey", root[new PyTuple([1L, "k"])]);
        var shared = Assert.IsType<List<object?>>(root["shared"]);
        Assert.Same(shared[0], shared[1]); // memo references stay shared
    }

    [Fact]
    public void Allowed_globals_cannot_be_abused()
    {
        // A storage type is allowed as a marker but is not callable.
        var w = new PickleWriter().Proto(2).Global("torch", "FloatStorage").Mark().Int(10).Tuple().Reduce().Stop();
        var e = Assert.Throws<CheckpointFormatException>(() => SafeUnpickler.Loads(w.ToArray()));
        Assert.Contains("torch.FloatStorage cannot be called", e.Message);
        // REDUCE of something that is not a global at all.
        w = new PickleWriter().Proto(2).Str("os.system").Mark().Str("ls").Tuple().Reduce().Stop();
        e = Assert.Throws<CheckpointFormatException>(() => SafeUnpickler.Loads(w.ToArray()));
        Assert.Contains("not an allowed global", e.Message);
        // A tensor rebuild with a forged (non-storage) argument.
        w = new PickleWriter().Proto(2).Global("torch._utils", "_rebuild_tensor_v2")
            .Mark().Str("x").Int(0).Ints(1).Ints(1).False().None().Tuple().Reduce().Stop();
        e = Assert.Throws<CheckpointFormatException>(() => SafeUnpickler.Loads(w.ToArray()));
        Assert.Contains("storage argument is a str", e.Message);
        // A persistent id that is not a torch storage.
        w = new PickleWriter().Proto(2).Tensor("0", "FloatStorage", "cpu", 1, 0, [1], [1]).Stop();
        var path = PathIn("pid.pkl");
        PickleWriter.WriteZip(path, w.ToArray().Select(b => b).ToArray(), new Dictionary<string, byte[]> { ["0"] = Floats(1) });
        using (var ok = TorchCheckpoint.Load(path))
            Assert.Equal(1f, ((Tensor)ok.Root!).item<float>());
        w = new PickleWriter().Proto(2).Mark().Str("module").Str("os").Tuple().BinPersId().Stop();
        PickleWriter.WriteZip(path, w.ToArray(), new Dictionary<string, byte[]>());
        Assert.Contains("unsupported persistent id", Assert.Throws<CheckpointFormatException>(() => TorchCheckpoint.Load(path)).Message);
    }
}

public class SafeUnpicklerFuzzTests
{
    [Fact]
    public void Mutated_pickles_fail_only_with_checkpoint_errors()
    {
        using var storageData = arange(16, dtype: ScalarType.Float32);
        var storage = new TorchStorage("0", ScalarType.Float32, "cpu", storageData);
        object? Persistent(object? pid) => pid is PyTuple { Count: 5 } t && t[0] is "storage"
            ? storage
            : throw new CheckpointFormatException("fuzz", "bad persistent id");

        var torchLike = new PickleWriter().Proto(2).EmptyDict().Mark()
            .Str("a").Tensor("0", "FloatStorage", "cpu", 16, 0, [4, 4], [4, 1])
            .Str("b").Tensor("0", "FloatStorage", "cpu", 16, 3, [2, 3], [1, 5])
            .Str("n").Int(70000).Str("l").EmptyList().Mark().Int(1).Str("x").Appends()
            .SetItems().Stop().ToArray();
        var plain = Convert.FromBase64String(TorchCheckpointTests.PythonPickles.Select(r => (string)r[1]).ElementAt(2));

        var rng = new Random(1234);
        var outcomes = new Dictionary<string, int>();
        foreach (var seed in new[] { torchLike, plain })
        {
            for (var iter = 0; iter < 3000; iter++)
            {
                var data = (byte[])seed.Clone();
                var flips = 1 + rng.Next(3);
                for (var f = 0; f < flips; f++)
                    data[rng.Next(data.Length)] = (byte)rng.Next(256);
                if (rng.Next(4) == 0)
                    data = data[..rng.Next(data.Length)];
                var unpickler = new SafeUnpickler(data, "fuzz", Persistent);
                string outcome;
                try
                {
                    unpickler.Load();
                    outcome = "ok";
                }
                catch (CheckpointFormatException e)
                {
                    outcome = e.GetType().Name;
                }
                finally
                {
                    foreach (var t in unpickler.CreatedTensors)
                        t.Dispose();
                }
                outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
            }
        }
        Assert.True(outcomes.GetValueOrDefault(nameof(CheckpointFormatException)) > 1000, string.Join(", ", outcomes));
    }

    [Fact]
    public void Mutated_zips_fail_only_with_checkpoint_errors()
    {
        var dir = Directory.CreateTempSubdirectory("dloral-zipfuzz-").FullName;
        try
        {
            var w = new PickleWriter().Proto(2).EmptyDict().Mark()
                .Str("a").Tensor("0", "FloatStorage", "cpu", 4, 0, [4], [1])
                .Str("b").Tensor("1", "LongStorage", "cpu", 2, 0, [2], [1])
                .SetItems().Stop().ToArray();
            var src = Path.Combine(dir, "src.pkl");
            PickleWriter.WriteZip(src, w, new Dictionary<string, byte[]>
            {
                ["0"] = new byte[16],
                ["1"] = new byte[16],
            });
            var seed = File.ReadAllBytes(src);
            var rng = new Random(99);
            var path = Path.Combine(dir, "m.pkl");
            var ok = 0;
            var failed = 0;
            for (var iter = 0; iter < 600; iter++)
            {
                var data = (byte[])seed.Clone();
                for (var f = 0; f < 1 + rng.Next(4); f++)
                    data[rng.Next(data.Length)] = (byte)rng.Next(256);
                File.WriteAllBytes(path, data);
                var lazy = iter % 2 == 1;
                try
                {
                    using var c = TorchCheckpoint.Load(path, lazy);
                    if (lazy && c.Root is PyDict d)
                        foreach (var v in d.Values.OfType<TorchTensorRef>())
                            v.Load().Dispose();
                    ok++;
                }
                catch (CheckpointFormatException)
                {
                    failed++;
                }
            }
            Assert.True(failed > 50, $"{failed} failed, {ok} loaded");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
