using Dloral.Checkpoints;
using Dloral.Diffusion;
using Dloral.Nn;
using Dloral.Tests.Support;
using static TorchSharp.torch;

namespace Dloral.Tests.Diffusion;

public sealed class DiffusersFolderTests : IDisposable
{
    private readonly string _tmp = Path.Combine(Path.GetTempPath(), "dloral-sd-" + Guid.NewGuid().ToString("N"));

    public DiffusersFolderTests() => Directory.CreateDirectory(_tmp);

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    /// <summary>A copy of golden tiny_sd with only the named components.</summary>
    private string CopyTinySd(params string[] components)
    {
        var root = Path.Combine(_tmp, "sd");
        Directory.CreateDirectory(root);
        File.Copy(GoldenData.PathOf("tiny_sd", "model_index.json"), Path.Combine(root, "model_index.json"));
        foreach (var c in components)
        {
            Directory.CreateDirectory(Path.Combine(root, c));
            foreach (var f in Directory.GetFiles(GoldenData.PathOf("tiny_sd", c)))
                File.Copy(f, Path.Combine(root, c, Path.GetFileName(f)));
        }
        return root;
    }

    private static Tensor RunTinyCase(UNet2DCondition unet, ScalarType dtype = ScalarType.Float32)
    {
        using var golden = GoldenData.Open("tiny_unet", "case_b1_t1.safetensors");
        using var guard = inference_mode();
        return unet.call(golden.Load("in.sample", dtype), golden.Load("in.timestep"), golden.Load("in.encoder_hidden_states", dtype));
    }

    private static Tensor GoldenOut()
    {
        using var golden = GoldenData.Open("tiny_unet", "case_b1_t1.safetensors");
        return golden.Load("out.sample");
    }

    [Fact]
    public void Loads_unet_and_vae_of_tiny_sd_folder()
    {
        TorchRuntime.Initialize();
        var folder = DiffusersFolder.Open(GoldenData.PathOf("tiny_sd"));
        Assert.Equal(("diffusers", "UNet2DConditionModel"), folder.Components["unet"]);
        Assert.False(folder.Components.ContainsKey("safety_checker"));
        using var unet = folder.LoadUNet();
        using var output = RunTinyCase(unet);
        using var expected = GoldenOut();
        TensorAssert.Close(expected, output, 1e-5, 1e-4, "tiny_sd unet");
        using var unetCl = folder.LoadUNet(new ModelOptions { ChannelsLast = true });
        Assert.True(MemoryFormat.IsChannelsLast(unetCl.state_dict()["down_blocks.0.resnets.0.conv1.weight"]));
        using var outputCl = RunTinyCase(unetCl);
        TensorAssert.Close(expected, outputCl, 1e-5, 1e-4, "tiny_sd unet, channels-last load");

        using var vae = folder.LoadVae();
        using var golden = GoldenData.Open("tiny_vae", "case_b1_32.safetensors");
        using var scope = NewDisposeScope();
        using var guard = inference_mode();
        TensorAssert.Close(golden.Load("out.decoded"), vae.Decode(golden.Load("in.latent")), 1e-5, 1e-4, "tiny_sd vae decode");
    }

    [Fact]
    public void Missing_folder_component_or_file_is_a_clear_error()
    {
        var notSd = Path.Combine(_tmp, "empty");
        Directory.CreateDirectory(notSd);
        var e1 = Assert.Throws<FileNotFoundException>(() => DiffusersFolder.Open(notSd));
        Assert.Contains("model_index.json is missing", e1.Message);
        Assert.Throws<DirectoryNotFoundException>(() => DiffusersFolder.Open(Path.Combine(_tmp, "nope")));

        var root = CopyTinySd("unet");
        var folder = DiffusersFolder.Open(root);
        var e2 = Assert.Throws<DirectoryNotFoundException>(() => folder.LoadVae());
        Assert.Contains("'vae/' is missing", e2.Message);
        Assert.Contains("model_index.json lists it", e2.Message);

        File.Delete(Path.Combine(root, "unet", "diffusion_pytorch_model.safetensors"));
        var e3 = Assert.Throws<FileNotFoundException>(() => folder.LoadUNet());
        Assert.Contains("no weights for 'unet'", e3.Message);
        Assert.Contains("diffusion_pytorch_model.safetensors", e3.Message);

        File.Delete(Path.Combine(root, "unet", "config.json"));
        var e4 = Assert.Throws<FileNotFoundException>(() => folder.LoadUNet());
        Assert.Contains("'unet/config.json' is missing", e4.Message);
    }

    [Theory]
    [InlineData("down_block_types", "[\"SimpleCrossAttnDownBlock2D\",\"CrossAttnDownBlock2D\",\"CrossAttnDownBlock2D\",\"DownBlock2D\"]", "SimpleCrossAttnDownBlock2D")]
    [InlineData("up_block_types", "[\"UpBlock2D\",\"CrossAttnUpBlock2D\",\"AttnUpBlock2D\",\"CrossAttnUpBlock2D\"]", "AttnUpBlock2D")]
    [InlineData("mid_block_type", "\"UNetMidBlock2DSimpleCrossAttn\"", "UNetMidBlock2DSimpleCrossAttn")]
    [InlineData("class_embed_type", "\"timestep\"", "class_embed_type")]
    public void Unsupported_config_is_named(string key, string json, string named)
    {
        var root = CopyTinySd("unet");
        var configPath = Path.Combine(root, "unet", "config.json");
        var node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(configPath))!;
        node[key] = System.Text.Json.Nodes.JsonNode.Parse(json);
        File.WriteAllText(configPath, node.ToJsonString());
        var e = Assert.Throws<NotSupportedException>(() => DiffusersFolder.Open(root).LoadUNet());
        Assert.Contains(named, e.Message);
        Assert.Contains("config.json", e.Message);
    }

    [Fact]
    public void Missing_unexpected_and_misshapen_keys_are_reported_together_and_nothing_is_loaded()
    {
        TorchRuntime.Initialize();
        var tensors = GoldenData.Open("tiny_unet", "unet", "diffusion_pytorch_model.safetensors").LoadAll();
        try
        {
            tensors.Remove("conv_in.bias", out var removed);
            removed!.Dispose();
            tensors["extra.weight"] = zeros(3);
            tensors["conv_out.weight"].Dispose();
            tensors["conv_out.weight"] = zeros(4, 16, 1, 1);
            var path = Path.Combine(_tmp, "broken.safetensors");
            SafeTensorsWriter.Save(path, tensors);

            using var unet = UNet2DCondition.FromConfigFile(GoldenData.PathOf("tiny_unet", "unet", "config.json"));
            using var before = unet.state_dict()["conv_in.weight"].clone();
            var e = Assert.Throws<StateDictMismatchException>(() => DiffusersFolder.LoadWeights(unet, [path]));
            Assert.Equal(["conv_in.bias"], e.Missing);
            Assert.Equal(["extra.weight"], e.Unexpected);
            Assert.Single(e.ShapeMismatches);
            Assert.Contains("conv_out.weight expected [4,16,3,3] found [4,16,1,1]", e.Message);
            Assert.Contains(path, e.Message);
            TensorAssert.Equal(before, unet.state_dict()["conv_in.weight"], "validation precedes any write");

            // Non-strict: missing/unexpected are returned, shape mismatches still throw.
            tensors["conv_out.weight"].Dispose();
            tensors["conv_out.weight"] = zeros(4, 16, 3, 3);
            SafeTensorsWriter.Save(path, tensors);
            var result = DiffusersFolder.LoadWeights(unet, [path], strict: false);
            Assert.Equal(["conv_in.bias"], result.Missing);
            Assert.Equal(["extra.weight"], result.Unexpected);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    [Fact]
    public void Fp16_variant_loads_and_converts_in_place_to_float32_and_bfloat16()
    {
        TorchRuntime.Initialize();
        var root = CopyTinySd("unet");
        var fp32Path = Path.Combine(root, "unet", "diffusion_pytorch_model.safetensors");
        Dictionary<string, Tensor> original;
        using (var f = SafeTensorsFile.Open(fp32Path)) original = f.LoadAll();
        try
        {
            var half = original.ToDictionary(kv => kv.Key, kv => kv.Value.to_type(ScalarType.Float16));
            SafeTensorsWriter.Save(Path.Combine(root, "unet", "diffusion_pytorch_model.fp16.safetensors"), half);
            foreach (var t in half.Values) t.Dispose();
            File.Delete(fp32Path); // only the fp16 variant is left, as in a "fp16" download

            var folder = DiffusersFolder.Open(root);
            Assert.EndsWith("diffusion_pytorch_model.fp16.safetensors", Assert.Single(folder.WeightFiles("unet")));
            using var unet32 = folder.LoadUNet();
            var sd = unet32.state_dict();
            foreach (var (k, t) in original)
            {
                Assert.Equal(ScalarType.Float32, sd[k].dtype);
                using var expected = t.to_type(ScalarType.Float16).to_type(ScalarType.Float32);
                TensorAssert.Equal(expected, sd[k], k);
            }
            using var out32 = RunTinyCase(unet32);
            using var golden = GoldenOut();
            // fp16 weight rounding (2^-11 relative) moves the output by ~1e-3: loose bound, but far below a wrong load.
            TensorAssert.Close(golden, out32, 1e-2, 1e-2, "fp16 weights, fp32 compute");

            using var unet16 = folder.LoadUNet(new ModelOptions(DType: ScalarType.BFloat16), variant: "fp16");
            var sd16 = unet16.state_dict();
            foreach (var (k, t) in original)
            {
                using var expected = t.to_type(ScalarType.Float16).to_type(ScalarType.BFloat16);
                TensorAssert.Equal(expected, sd16[k], k);
            }
        }
        finally
        {
            foreach (var t in original.Values) t.Dispose();
        }
    }

    [Fact]
    public void Sharded_checkpoint_loads_like_the_single_file()
    {
        TorchRuntime.Initialize();
        var root = CopyTinySd("unet");
        var single = Path.Combine(root, "unet", "diffusion_pytorch_model.safetensors");
        Dictionary<string, Tensor> all;
        using (var f = SafeTensorsFile.Open(single)) all = f.LoadAll();
        try
        {
            var keys = all.Keys.ToList();
            var first = keys.Take(keys.Count / 2).ToList();
            var second = keys.Skip(keys.Count / 2).ToList();
            SafeTensorsWriter.Save(Path.Combine(root, "unet", "diffusion_pytorch_model-00001-of-00002.safetensors"), first.Select(k => KeyValuePair.Create(k, all[k])));
            SafeTensorsWriter.Save(Path.Combine(root, "unet", "diffusion_pytorch_model-00002-of-00002.safetensors"), second.Select(k => KeyValuePair.Create(k, all[k])));
            var map = first.ToDictionary(k => k, _ => "diffusion_pytorch_model-00001-of-00002.safetensors");
            foreach (var k in second) map[k] = "diffusion_pytorch_model-00002-of-00002.safetensors";
            File.WriteAllText(single + ".index.json", System.Text.Json.JsonSerializer.Serialize(new { metadata = new { total_size = 0 }, weight_map = map }));
            File.Delete(single);

            var folder = DiffusersFolder.Open(root);
            Assert.Equal(2, folder.WeightFiles("unet").Count);
            using var unet = folder.LoadUNet();
            var sd = unet.state_dict();
            foreach (var (k, t) in all) TensorAssert.Equal(t, sd[k], k);
            using var output = RunTinyCase(unet);
            using var golden = GoldenOut();
            TensorAssert.Close(golden, output, 1e-5, 1e-4, "sharded");

            // A missing shard is named.
            File.Delete(Path.Combine(root, "unet", "diffusion_pytorch_model-00002-of-00002.safetensors"));
            var e = Assert.Throws<FileNotFoundException>(() => folder.LoadUNet());
            Assert.Contains("shard 'diffusion_pytorch_model-00002-of-00002.safetensors' is missing", e.Message);
        }
        finally
        {
            foreach (var t in all.Values) t.Dispose();
        }
    }

    [Fact]
    public void Generic_loader_takes_prefix_and_filter_and_fills_parameters_in_place()
    {
        TorchRuntime.Initialize();
        Dictionary<string, Tensor> weights;
        using (var f = GoldenData.Open("tiny_vae", "vae", "diffusion_pytorch_model.safetensors")) weights = f.LoadAll();
        try
        {
            var prefixed = weights.ToDictionary(kv => "vae." + kv.Key, kv => kv.Value);
            prefixed["text_encoder.something"] = weights.First().Value;
            using var vae = AutoencoderKL.FromConfigFile(GoldenData.PathOf("tiny_vae", "vae", "config.json"));
            var param = vae.state_dict()["decoder.conv_out.weight"];
            var handleBefore = param.storage<float>().data_ptr();
            var result = StateDictLoader.Load(vae, prefixed, "in-memory", prefix: "vae.");
            Assert.Equal(weights.Count, result.Loaded.Count);
            Assert.Equal(handleBefore, vae.state_dict()["decoder.conv_out.weight"].storage<float>().data_ptr());
            TensorAssert.Equal(weights["decoder.conv_out.weight"], param, "decoder.conv_out.weight");

            // Filter: only the decoder; the encoder keys are then missing (non-strict returns them).
            using var vae2 = AutoencoderKL.FromConfigFile(GoldenData.PathOf("tiny_vae", "vae", "config.json"));
            var partial = StateDictLoader.Load(vae2, weights, "in-memory", keyFilter: k => k.StartsWith("decoder.", StringComparison.Ordinal), strict: false);
            Assert.All(partial.Loaded, k => Assert.StartsWith("decoder.", k));
            Assert.Contains("encoder.conv_in.weight", partial.Missing);
            Assert.Throws<StateDictMismatchException>(() =>
                StateDictLoader.Load(vae2, weights, "in-memory", keyFilter: k => k.StartsWith("decoder.", StringComparison.Ordinal)));
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
        }
    }

    [Fact]
    public void Truncated_weights_file_is_a_clear_error_naming_the_file()
    {
        var root = CopyTinySd("vae");
        var path = Path.Combine(root, "vae", "diffusion_pytorch_model.safetensors");
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<SafeTensorsException>(() => DiffusersFolder.Open(root).LoadVae());
        Assert.Contains(path, e.Message);
        Assert.Contains("outside the data section", e.Message);
    }
}
