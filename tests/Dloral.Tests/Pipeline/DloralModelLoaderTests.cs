using System.Text.Json.Nodes;
using Dloral.Checkpoints;
using Dloral.Diffusion;
using Dloral.Lora;
using Dloral.Pipeline;
using Dloral.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Pipeline;

/// <summary>The tiny DLoRAL built the way a user builds the real one: diffusers folder (golden tiny_sd) + official model.pkl.</summary>
public class DloralModelLoaderTests(ITestOutputHelper output)
{
    [Fact]
    public void Folder_plus_checkpoint_gives_the_golden_weights_and_reproduces_dloral_step()
    {
        TorchRuntime.Initialize();
        using var model = DloralModelLoader.Load(GoldenData.PathOf("tiny_sd"), GoldenData.PathOf("checkpoint", "model.pkl"));
        using var scope = NewDisposeScope();

        // Every UNet tensor equals the checkpoint's (and the golden LoRA UNet's), names included.
        var unetSd = model.Unet.state_dict();
        using (var ckpt = DloralCheckpoint.Load(GoldenData.PathOf("checkpoint", "model.pkl")))
        {
            Assert.Equal(ckpt.StateDictUnet.Keys.ToHashSet(), unetSd.Keys.ToHashSet());
            foreach (var (k, v) in ckpt.StateDictUnet) TensorAssert.Equal(v, unetSd[k], k);
            // CFR: every tensor of the used submodules from state_dict_bpp; the unused ones are not built.
            var cfrSd = model.Cfr.state_dict();
            foreach (var (k, v) in cfrSd) TensorAssert.Equal(ckpt.StateDictBpp[k], v, $"cfr {k}");
            Assert.All(ckpt.StateDictBpp.Keys.Where(k => !cfrSd.ContainsKey(k)), k => Assert.True(Dloral.Temporal.CrossFrameRetrieval.IsUnusedReferenceName(k), k));
        }
        using (var lora = GoldenData.Open("lora", "unet_lora_state_dict.safetensors"))
            foreach (var key in lora.Entries.Keys) TensorAssert.Equal(lora.Load(key), unetSd[key], $"golden lora {key}");

        Assert.Equal(DloralStage.Full, model.Adapters.Stage);
        Assert.All(LoraModel.Layers(model.Unet), l => Assert.Equal(6, l.Layer.ActiveAdapters.Count));

        using var g = GoldenData.Open("dloral_step", "case_dloral_step.safetensors");
        using var guard = inference_mode();
        // Through the tiling-capable entry point (64x64 latent ≤ 96² tile: the reference's non-tiled branch).
        var frames = DloralModelTests.GoldenFrames();
        var latents = model.EncodeLatents(frames.view(2, 3, 512, 512)).view(1, 2, 4, 64, 64);
        var x = model.DenoiseWindow(frames, latents, g.Load("in.uncertainty_map"), g.Load("in.prompt_embeds"), new LatentTiler());
        var r = (XDenoised: x, OutputImage: model.DecodeLatents(x));
        double maxX = TensorAssert.MaxAbsDiff(g.Load("out.stage1.x_denoised"), r.XDenoised);
        double maxImg = TensorAssert.MaxAbsDiff(g.Load("out.stage1.output_image"), r.OutputImage);
        double meanImg = (r.OutputImage - g.Load("out.stage1.output_image")).abs().mean().item<float>();
        output.WriteLine($"from model.pkl: x_denoised max |diff| {maxX:G3}; output_image max {maxImg:G3}, mean {meanImg:G3}");
        TensorAssert.Close(g.Load("out.stage1.x_denoised"), r.XDenoised, 2e-4, 0, "x_denoised");
        TensorAssert.Close(g.Load("out.stage1.output_image"), r.OutputImage, 1e-3, 0, "output_image");
        Assert.True(meanImg < 1e-5, $"output_image mean |diff| {meanImg:G3}");
    }

    [Fact]
    public void Checkpoint_that_does_not_fit_the_folder_UNet_is_refused_with_the_mismatches_listed()
    {
        TorchRuntime.Initialize();
        // A diffusers folder whose UNet is another architecture (cross-attention width 64 instead of 32).
        var dir = Directory.CreateTempSubdirectory("dloral-wrong-sd-");
        try
        {
            foreach (var sub in new[] { "unet", "vae" })
            {
                Directory.CreateDirectory(Path.Combine(dir.FullName, sub));
                foreach (var f in Directory.GetFiles(GoldenData.PathOf("tiny_sd", sub)))
                    File.Copy(f, Path.Combine(dir.FullName, sub, Path.GetFileName(f)));
            }
            File.Copy(GoldenData.PathOf("tiny_sd", "model_index.json"), Path.Combine(dir.FullName, "model_index.json"));
            var configPath = Path.Combine(dir.FullName, "unet", "config.json");
            var config = JsonNode.Parse(File.ReadAllText(configPath))!;
            config["cross_attention_dim"] = 64;
            File.WriteAllText(configPath, config.ToJsonString());

            var e = Assert.Throws<StateDictMismatchException>(() =>
                DloralModelLoader.Load(dir.FullName, GoldenData.PathOf("checkpoint", "model.pkl")));
            Assert.Contains("model.pkl[state_dict_unet]", e.Message, StringComparison.Ordinal);
            Assert.Contains("attn2.to_k.base_layer.weight expected [", e.Message, StringComparison.Ordinal);
            output.WriteLine(e.Message[..Math.Min(600, e.Message.Length)]);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
