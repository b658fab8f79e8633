using Dloral.Lora;
using Dloral.Pipeline;
using Dloral.Pipeline.Codecs;
using Dloral.Pipeline.Compact;
using Dloral.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Pipeline;

public class CompactModelTests(ITestOutputHelper output)
{
    private static string Folder => Path.Combine(GoldenData.RepoRoot, "models", "compact");

    private static Tensor LrWindow(int seed, long h = 24, long w = 40)
    {
        // A smooth moving pattern (second frame shifted by one pixel), like the clip datasets' camera motion.
        var y = arange(h, dtype: ScalarType.Float32).view(1, 1, h, 1);
        var x = arange(w + 1, dtype: ScalarType.Float32).view(1, 1, 1, w + 1);
        var phase = new[] { 0.0, 1.3, 2.1 }.Select(p => (y * 0.3 + x * 0.2 + p + seed).sin() * 0.8).ToArray();
        var img = cat(phase.Select(p => p.expand(1, 1, h, w + 1)).ToArray(), 1); // [1,3,h,w+1]
        return stack([img.narrow(3, 0, w), img.narrow(3, 1, w)], 1); // [1,2,3,h,w]
    }

    [Fact]
    public void Builds_from_the_config_and_upscales_a_window_by_the_scale()
    {
        TorchRuntime.Initialize();
        using var model = CompactDloral.Build(Folder);
        Assert.Equal(4, model.Config.Scale);
        Assert.IsType<PixelUnshuffleCodec>(model.Model.Codec);
        int f = model.Config.CodecFactor, c = 3 * f * f; // the codec's latent channels: 3·f² (lossless unshuffle)
        Assert.Equal(c, model.Model.LatentChannels);
        Assert.Equal(Folder, CompactDloral.FindModelFolder());
        var noVae = Assert.Throws<InvalidOperationException>(() => model.Model.Vae);
        Assert.Contains("PixelUnshuffleCodec", noVae.Message);
        Assert.Equal(DloralAdapters.AddOrder.OrderBy(s => s), LoraModel.AdapterNames(model.Model.Unet).OrderBy(s => s));
        long parameters = model.NamedWeights().Sum(kv => kv.Value.numel());
        output.WriteLine($"parameters (incl. buffers): {parameters:N0}");

        using var scope = NewDisposeScope();
        using var guard = inference_mode();
        var lr = LrWindow(0);
        using var result = model.Upscale(lr);
        Assert.Equal(new long[] { 1, 3, 96, 160 }, result.OutputImage.shape);
        Assert.Equal(new long[] { 1, c, 96 / f, 160 / f }, result.XDenoised.shape);
        Assert.True(result.OutputImage.isfinite().all().item<bool>());
        Assert.True(result.OutputImage.abs().max().item<float>() <= 1f);
        // conv_out starts at zero, so the untrained UNet predicts ε̂ = 0 exactly: training starts from the identity on the
        // bicubic input (x = fused current latent).
        Assert.Equal(0f, result.ModelPred.abs().max().item<float>());
        Assert.Equal(new long[] { 1, 2 * c, 96 / f, 160 / f }, result.UnetInput.shape);
        TensorAssert.Close(result.UnetInput.narrow(1, c, c), result.XDenoised, 0, 0, "x = fused current latent − 0");
    }

    [Fact]
    public void Step_and_DenoiseWindow_agree_on_the_codec_latents_and_the_tiled_path_runs()
    {
        TorchRuntime.Initialize();
        using var model = CompactDloral.Build(Folder);
        using var scope = NewDisposeScope();
        using var guard = inference_mode();
        var lr = LrWindow(2, 32, 48); // HR 128×192, latent 16×24 at f=8
        using var step = model.Upscale(lr);
        var hr = nn.functional.interpolate(lr.view(2, 3, 32, 48), size: [128, 192], mode: InterpolationMode.Bicubic, align_corners: false)
            .clamp_(-1, 1).view(1, 2, 3, 128, 192);
        var uncertainty = model.UncertaintyOf(hr);
        var x = model.Model.DenoiseWindow(hr, step.Latents, uncertainty, model.Prompt);
        output.WriteLine($"DenoiseWindow vs Step: max |diff| {TensorAssert.MaxAbsDiff(step.XDenoised, x):G3}");
        TensorAssert.Close(step.XDenoised, x, 1e-5, 1e-5, "x_denoised");
        // Per-latent-tile CFR + UNet with Gaussian blending (the video path) runs on the compact latents too.
        var tiled = model.Model.DenoiseWindow(hr, step.Latents, uncertainty, model.Prompt, new LatentTiler(tileSize: 16, overlap: 8));
        Assert.Equal(x.shape, tiled.shape);
        double diff = (tiled - x).abs().mean().item<float>();
        output.WriteLine($"tiled vs whole: mean |diff| {diff:G3}");
        Assert.True(tiled.isfinite().all().item<bool>());
    }

    [Fact]
    public void Build_is_deterministic_and_save_load_reproduces_outputs_in_one_small_file()
    {
        TorchRuntime.Initialize();
        string path = Path.Combine(Path.GetTempPath(), $"dloral-compact-{Environment.ProcessId}.safetensors");
        try
        {
            using var a = CompactDloral.Build(Folder);
            using var b = CompactDloral.Build(Folder);
            // Give the adapters non-zero B so the save must carry them (fresh LoRA B is zero).
            using (no_grad())
            {
                var gen = new Generator(3);
                foreach (var (name, p) in a.Model.Unet.named_parameters().Where(p => p.name.Contains("lora_B", StringComparison.Ordinal)))
                    p.copy_(randn(p.shape, generator: gen) * 0.01);
                foreach (var (name, p) in a.Model.Cfr.named_parameters().Where(p => p.name.Contains("proj_out", StringComparison.Ordinal)))
                    p.add_(0.05);
            }
            using var scope = NewDisposeScope();
            using var guard = inference_mode();
            var lr = LrWindow(1);
            using var ra = a.Upscale(lr);
            using var rb = b.Upscale(lr);
            Assert.True(TensorAssert.MaxAbsDiff(ra.OutputImage, rb.OutputImage) > 0, "the perturbed adapters must change the output");

            a.Save(path);
            long bytes = new FileInfo(path).Length;
            output.WriteLine($"weights file: {bytes / 1e6:F2} MB");
            Assert.True(bytes < 25L << 20, $"weights file {bytes} bytes ≥ 25 MiB");
            using var loaded = CompactDloral.Load(path);
            var wa = a.NamedWeights().ToDictionary(kv => kv.Key, kv => kv.Value);
            foreach (var (name, t) in loaded.NamedWeights())
            {
                Assert.True(wa.ContainsKey(name), $"{name} not in the saved model");
                Assert.True(TensorAssert.MaxAbsDiff(wa[name], t) == 0, $"{name} differs after load");
            }
            Assert.Equal(wa.Count, loaded.NamedWeights().Count());
            using var rl = loaded.Upscale(lr);
            output.WriteLine($"save/load output diff {TensorAssert.MaxAbsDiff(ra.OutputImage, rl.OutputImage):G3}");
            TensorAssert.Equal(ra.OutputImage, rl.OutputImage);
            TensorAssert.Equal(ra.ModelPred, rl.ModelPred);

            // Two fresh builds from the same seed are identical.
            using var c = CompactDloral.Build(Folder);
            using var rc = c.Upscale(lr);
            TensorAssert.Equal(rb.OutputImage, rc.OutputImage);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Load_refuses_a_file_that_is_not_a_compact_model()
    {
        string path = Path.Combine(Path.GetTempPath(), $"dloral-notcompact-{Environment.ProcessId}.safetensors");
        try
        {
            using (var scope = NewDisposeScope())
                Dloral.Checkpoints.SafeTensorsWriter.Save(path, [new("x", zeros(2))]);
            var e = Assert.Throws<InvalidDataException>(() => CompactDloral.Load(path));
            Assert.Contains("not a compact DLoRAL weights file", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
