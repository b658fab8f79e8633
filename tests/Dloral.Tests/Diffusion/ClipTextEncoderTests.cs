using System.Text.Json;
using Dloral.Checkpoints;
using Dloral.Diffusion;
using Dloral.Diffusion.Clip;
using Dloral.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Diffusion;

public class ClipTextEncoderTests(ITestOutputHelper output)
{
    [Fact]
    public void Tiny_text_model_matches_golden_hidden_states_and_pooler()
    {
        using var encoder = ClipTextEncoder.FromFolder(GoldenData.PathOf("tiny_clip_text", "text_encoder"));
        Assert.Equal("gelu", encoder.Config.HiddenAct);
        using var golden = GoldenData.Open("tiny_clip_text", "case_text_model.safetensors");
        using var ids = golden.Load("in.input_ids");
        using var _ = no_grad();
        using var result = encoder.Encode(ids, outputHiddenStates: true);

        using var last = golden.Load("out.last_hidden_state");
        using var pooled = golden.Load("out.pooler_output");
        TensorAssert.Close(last, result.LastHiddenState, 1e-5, 1e-4, "last_hidden_state");
        TensorAssert.Close(pooled, result.PoolerOutput, 1e-5, 1e-4, "pooler_output");
        output.WriteLine($"last_hidden_state max abs diff {TensorAssert.MaxAbsDiff(last, result.LastHiddenState):E2}");
        output.WriteLine($"pooler_output max abs diff {TensorAssert.MaxAbsDiff(pooled, result.PoolerOutput):E2}");
        Assert.Equal(4, result.HiddenStates.Count);
        for (var i = 0; i < 4; i++)
        {
            using var h = golden.Load($"act.hidden_states.{i}");
            TensorAssert.Close(h, result.HiddenStates[i], 1e-5, 1e-4, $"hidden_states.{i}");
        }

        // forward() is the same last_hidden_state.
        using var fwd = encoder.forward(ids);
        TensorAssert.Equal(result.LastHiddenState, fwd, "forward");
    }

    [Fact]
    public void Prompt_encoder_tokenizes_and_encodes_like_the_reference()
    {
        using var doc = GoldenData.Json("tiny_clip_text", "tokenizer_cases.json");
        var cases = doc.RootElement.GetProperty("cases");
        string[] prompts = [cases[1].GetProperty("prompt").GetString()!, cases[3].GetProperty("prompt").GetString()!];

        using var pe = PromptEncoder.FromDiffusersFolder(GoldenData.PathOf("tiny_sd"));
        using var golden = GoldenData.Open("tiny_clip_text", "case_text_model.safetensors");
        using var ids = golden.Load("in.input_ids");
        using var ourIds = pe.Tokenizer.EncodeToTensor(prompts);
        TensorAssert.Equal(ids, ourIds, "input_ids");

        using var last = golden.Load("out.last_hidden_state");
        using var one = pe.Encode(prompts[1]);
        Assert.Equal(new long[] { 1, 77, 32 }, one.shape);
        using var expected = last[1].unsqueeze(0);
        TensorAssert.Close(expected, one, 1e-5, 1e-4, "prompt embeds");
        using var both = pe.Encode(prompts);
        TensorAssert.Close(last, both, 1e-5, 1e-4, "batched prompt embeds");
    }

    [Fact]
    public void Full_size_sd21_text_encoder_has_the_reference_names_and_shapes()
    {
        var config = ClipTextConfig.FromFile(GoldenData.PathOf("sd21_reference", "text_encoder_config.json"));
        Assert.Equal(23, config.NumHiddenLayers);
        Assert.Equal("gelu", config.HiddenAct);
        using var encoder = new ClipTextEncoder(config, device: new Device(DeviceType.META));
        var ours = encoder.state_dict().Select(kv => (kv.Key, Shape: string.Join(",", kv.Value.shape), kv.Value.dtype)).ToList();

        using var doc = GoldenData.Json("sd21_reference", "text_encoder_params.json");
        var reference = doc.RootElement.GetProperty("params").EnumerateArray()
            .Select(p => (Key: p.GetProperty("name").GetString()!,
                          Shape: string.Join(",", p.GetProperty("shape").EnumerateArray().Select(s => s.GetInt64())),
                          DType: p.GetProperty("dtype").GetString()!))
            .ToList();
        Assert.Equal(373, reference.Count);
        Assert.Equal(reference.Select(r => (r.Key, r.Shape)).OrderBy(r => r.Key, StringComparer.Ordinal),
                     ours.Select(o => (o.Key, o.Shape)).OrderBy(o => o.Key, StringComparer.Ordinal));
        // Parameters come in the reference order (k, v, q, out per layer); only TorchSharp places the
        // position_ids buffer after the embeddings instead of first.
        Assert.Equal(reference.Select(r => r.Key).Where(k => !k.EndsWith("position_ids", StringComparison.Ordinal)),
                     ours.Select(o => o.Key).Where(k => !k.EndsWith("position_ids", StringComparison.Ordinal)));
        foreach (var r in reference)
            Assert.Equal(r.DType == "int64" ? ScalarType.Int64 : ScalarType.Float32, ours.Single(o => o.Key == r.Key).dtype);
        var numel = encoder.parameters().Sum(p => p.numel());
        output.WriteLine($"SD 2.1 text encoder: {numel:N0} parameters, built on the meta device");
    }

    [Fact]
    public void Pytorch_model_bin_loads_through_the_safe_unpickler_and_bf16_stays_close()
    {
        var dir = Directory.CreateTempSubdirectory("dloral-clipbin-").FullName;
        try
        {
            var src = GoldenData.PathOf("tiny_clip_text", "text_encoder");
            File.Copy(Path.Combine(src, "config.json"), Path.Combine(dir, "config.json"));
            Dictionary<string, Tensor> tensors;
            using (var f = SafeTensorsFile.Open(Path.Combine(src, "model.safetensors")))
                tensors = f.LoadAll();
            Dloral.Tests.Checkpoints.PickleWriter.WriteStateDict(Path.Combine(dir, "pytorch_model.bin"), tensors);
            foreach (var t in tensors.Values)
                t.Dispose();

            using var golden = GoldenData.Open("tiny_clip_text", "case_text_model.safetensors");
            using var ids = golden.Load("in.input_ids");
            using var last = golden.Load("out.last_hidden_state");
            using var _ = no_grad();
            using (var fromBin = ClipTextEncoder.FromFolder(dir))
            {
                using var y = fromBin.forward(ids);
                TensorAssert.Close(last, y, 1e-5, 1e-4, "from pytorch_model.bin");
            }
            using var bf16 = ClipTextEncoder.FromFolder(src, dtype: ScalarType.BFloat16);
            using var yb = bf16.forward(ids);
            Assert.Equal(ScalarType.BFloat16, yb.dtype);
            using var yb32 = yb.to(ScalarType.Float32);
            var diff = TensorAssert.MaxAbsDiff(last, yb32);
            output.WriteLine($"bf16 text encoder: max abs diff {diff:E2} (max |ref| 3.9)");
            Assert.InRange(diff, 0, 0.1);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Loading_reports_missing_unexpected_and_mismatched_keys_together()
    {
        var dir = Directory.CreateTempSubdirectory("dloral-clip-").FullName;
        try
        {
            var src = GoldenData.PathOf("tiny_clip_text", "text_encoder");
            File.Copy(Path.Combine(src, "config.json"), Path.Combine(dir, "config.json"));
            Dictionary<string, Tensor> tensors;
            using (var f = SafeTensorsFile.Open(Path.Combine(src, "model.safetensors")))
                tensors = f.LoadAll();
            tensors.Remove("text_model.encoder.layers.1.mlp.fc2.bias", out var removed);
            removed!.Dispose();
            tensors["text_model.extra.weight"] = zeros(3);
            tensors["text_model.final_layer_norm.weight"].Dispose();
            tensors["text_model.final_layer_norm.weight"] = ones(31);
            SafeTensorsWriter.Save(Path.Combine(dir, "model.safetensors"), tensors);
            foreach (var t in tensors.Values)
                t.Dispose();

            var e = Assert.Throws<StateDictMismatchException>(() => ClipTextEncoder.FromFolder(dir));
            output.WriteLine(e.Message);
            Assert.Contains("model.safetensors", e.Message);
            Assert.Contains("missing keys (1,", e.Message);
            Assert.Contains("text_model.encoder.layers.1.mlp.fc2.bias", e.Message);
            Assert.Contains("unexpected keys (1,", e.Message);
            Assert.Contains("text_model.extra.weight", e.Message);
            Assert.Contains("text_model.final_layer_norm.weight expected [32] found [31]", e.Message);

            File.Delete(Path.Combine(dir, "model.safetensors"));
            var missing = Assert.Throws<FileNotFoundException>(() => ClipTextEncoder.FromFolder(dir));
            Assert.Contains("model.safetensors", missing.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Fp16_weights_convert_at_load_and_quick_gelu_differs_from_gelu()
    {
        var dir = Directory.CreateTempSubdirectory("dloral-clip16-").FullName;
        try
        {
            var src = GoldenData.PathOf("tiny_clip_text", "text_encoder");
            var cfgText = File.ReadAllText(Path.Combine(src, "config.json"));
            File.WriteAllText(Path.Combine(dir, "config.json"), cfgText);
            Dictionary<string, Tensor> tensors;
            using (var f = SafeTensorsFile.Open(Path.Combine(src, "model.safetensors")))
                tensors = f.LoadAll();
            var half = tensors.ToDictionary(kv => kv.Key, kv => kv.Value.is_floating_point() ? kv.Value.to(ScalarType.Float16) : kv.Value.alias());
            SafeTensorsWriter.Save(Path.Combine(dir, "model.fp16.safetensors"), half);

            using var golden = GoldenData.Open("tiny_clip_text", "case_text_model.safetensors");
            using var ids = golden.Load("in.input_ids");
            using var last = golden.Load("out.last_hidden_state");
            using var _ = no_grad();
            using (var enc16 = ClipTextEncoder.FromFolder(dir))
            {
                Assert.Equal(ScalarType.Float32, enc16.parameters().First().dtype);
                using var y = enc16.forward(ids);
                var diff = TensorAssert.MaxAbsDiff(last, y);
                output.WriteLine($"fp16-stored weights: max abs diff {diff:E2}");
                Assert.InRange(diff, 1e-6, 0.05); // rounded weights: close, but not identical
            }

            File.WriteAllText(Path.Combine(dir, "config.json"), cfgText.Replace("\"gelu\"", "\"quick_gelu\""));
            using var quick = ClipTextEncoder.FromFolder(dir);
            Assert.Equal("quick_gelu", quick.Config.HiddenAct);
            using var yq = quick.forward(ids);
            Assert.True(TensorAssert.MaxAbsDiff(last, yq) > 1e-3);
            foreach (var t in tensors.Values.Concat(half.Values))
                t.Dispose();
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
