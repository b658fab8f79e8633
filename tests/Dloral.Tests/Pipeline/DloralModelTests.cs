using System.Diagnostics;
using Dloral.Diffusion;
using Dloral.Lora;
using Dloral.Pipeline;
using Dloral.Temporal;
using Dloral.Tests.Lora;
using Dloral.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Pipeline;

/// <summary>Golden parity of the whole one-step forward (golden dloral_step/: Generator_eval.forward, non-tiled branch).</summary>
public class DloralModelTests(ITestOutputHelper output)
{
    private void Check(Tensor expected, Tensor actual, double atol, double rtol, string what)
    {
        output.WriteLine($"{what}: max |diff| {TensorAssert.MaxAbsDiff(expected, actual):G3}");
        TensorAssert.Close(expected, actual, atol, rtol, what);
    }

    private void CheckImage(Tensor expected, Tensor actual, string what)
    {
        double mean = (actual.to_type(ScalarType.Float64) - expected.to_type(ScalarType.Float64)).abs().mean().item<double>();
        output.WriteLine($"{what}: mean |diff| {mean:G3}");
        Check(expected, actual, 1e-3, 0, what);
        Assert.True(mean < 1e-5, $"{what}: mean |diff| {mean:G3} ≥ 1e-5");
    }

    /// <summary>The golden tiny DLoRAL: tiny_vae, the golden LoRA UNet (strict), the golden CFR (strict).</summary>
    internal static DloralModel LoadGoldenModel(DloralAdapterOptions? adapters = null)
    {
        TorchRuntime.Initialize();
        var vae = AutoencoderKL.FromConfigFile(GoldenData.PathOf("tiny_vae", "vae", "config.json"));
        using (var w = GoldenData.Open("tiny_vae", "vae", "diffusion_pytorch_model.safetensors")) StateDictLoader.Load(vae, w);
        var unet = DloralLoraGoldenTests.LoadGoldenLoraUNet();
        var cfr = new CrossFrameRetrieval();
        cfr.Load(GoldenData.PathOf("cfr", "weights.safetensors"), ignoreUnusedSubmodules: false);
        return new DloralModel(vae, unet, cfr, adapters);
    }

    internal static Tensor GoldenFrames()
    {
        using var f = GoldenData.Open("cfr", "case_cfr_full.safetensors");
        return f.Load("in.lqs_u8").to_type(ScalarType.Float32).div_(255.0).mul_(2.0).sub_(1.0);
    }

    [Fact]
    public void One_step_matches_reference_stage1_stage0_merged_and_sampled()
    {
        using var model = LoadGoldenModel();
        using var g = GoldenData.Open("dloral_step", "case_dloral_step.safetensors");
        using var scope = NewDisposeScope();
        using var guard = inference_mode();
        var frames = GoldenFrames();
        var uncertainty = g.Load("in.uncertainty_map");
        var prompt = g.Load("in.prompt_embeds");

        // VAE moments of both frames (the encode the latents come from).
        Check(g.Load("act.vae_moments"), model.Vae.EncodeMoments(frames.view(2, 3, 512, 512)), 1e-5, 1e-4, "act.vae_moments");

        var sw = Stopwatch.StartNew();
        using var r = model.Step(frames, uncertainty, prompt);
        output.WriteLine($"tiny DLoRAL step at 512x512: {sw.Elapsed.TotalSeconds:F2} s");
        Check(g.Load("act.cfr_in_vae_feat"), r.Latents, 1e-5, 1e-4, "act.cfr_in_vae_feat");
        Check(g.Load("act.cfr_fused_features"), r.Retrieval.FusedFeatures, 1e-5, 1e-4, "act.cfr_fused_features");
        Check(g.Load("act.cfr_aligned_feat_return"), r.Retrieval.AlignedFeatures, 5e-5, 1e-4, "act.cfr_aligned_feat_return");
        TensorAssert.Equal(g.Load("act.cfr_weight_map"), r.Retrieval.WeightMap, "act.cfr_weight_map");
        TensorAssert.Equal(g.Load("out.stage1.weight_map"), r.WeightMap, "out.stage1.weight_map");
        Check(g.Load("act.unet_in_sample"), r.UnetInput, 5e-5, 1e-4, "act.unet_in_sample");
        Check(g.Load("act.unet_out"), r.ModelPred, 2e-4, 1e-4, "act.unet_out");
        Check(g.Load("out.stage1.x_denoised"), r.XDenoised, 2e-4, 0, "out.stage1.x_denoised");
        CheckImage(g.Load("out.stage1.output_image"), r.OutputImage, "out.stage1.output_image");

        // Stage 0 (consistency adapters only) on the same UNet input.
        model.Configure(new DloralAdapterOptions(DloralStage.Consistency));
        Check(g.Load("out.stage0.x_denoised"), model.Denoise(r.UnetInput, prompt), 2e-4, 0, "out.stage0.x_denoised");

        // Merged stage 1 gives the same step.
        model.Configure(new DloralAdapterOptions(DloralStage.Full, MergeAdapters: true));
        var merged = model.Denoise(r.UnetInput, prompt);
        Check(g.Load("out.stage1.x_denoised"), merged, 2e-4, 0, "merged stage1 x_denoised");
        CheckImage(g.Load("out.stage1.output_image"), model.DecodeLatents(merged), "merged stage1 output_image");

        // The reference's random sample() path, with the stored noise, through cached latents.
        model.Configure(new DloralAdapterOptions());
        using var posterior = model.Vae.Encode(frames.view(2, 3, 512, 512));
        var sampled = (posterior.Sample(g.Load("in.eps")) * model.ScalingFactor).view(1, 2, 4, 64, 64);
        using var rs = model.Step(frames, uncertainty, prompt, latents: sampled);
        Check(g.Load("out.stage1_sampled.x_denoised"), rs.XDenoised, 2e-4, 0, "out.stage1_sampled.x_denoised");
    }

    [Fact]
    public void BFloat16_UNet_and_VAE_track_float32_merged_and_unmerged()
    {
        // A 32x32 crop of the golden UNet input keeps this cheap; the float32 model (golden-verified above) is the reference.
        using var model = LoadGoldenModel();
        using var g = GoldenData.Open("dloral_step", "case_dloral_step.safetensors");
        using var scope = NewDisposeScope();
        using var guard = inference_mode();
        var unetIn = g.Load("act.unet_in_sample")[.., .., ..32, ..32].contiguous();
        var prompt = g.Load("in.prompt_embeds");
        var reference = model.Denoise(unetIn, prompt);
        var referenceImage = model.DecodeLatents(reference);
        model.Unet.to(ScalarType.BFloat16);
        model.Vae.to(ScalarType.BFloat16);

        var x = model.Denoise(unetIn, prompt);       // the UNet computes in bfloat16; z − ε̂ keeps the float32 input's precision
        Assert.Equal(ScalarType.Float32, x.dtype);
        using (var bf16In = unetIn.to(ScalarType.BFloat16))
        using (var xb = model.Denoise(bf16In, prompt)) Assert.Equal(ScalarType.BFloat16, xb.dtype);
        double scale = reference.abs().max().item<float>();
        double maxErr = TensorAssert.MaxAbsDiff(reference, x), meanErr = (x.to_type(ScalarType.Float32) - reference).abs().mean().item<float>();
        output.WriteLine($"bf16 x_denoised: max |diff| {maxErr:G3} (max |ref| {scale:G3}), mean {meanErr:G3}");
        Assert.True(meanErr < 0.01 * scale && maxErr < 0.1 * scale, "bf16 x_denoised strays from float32");

        model.Configure(new DloralAdapterOptions(MergeAdapters: true));
        var xm = model.Denoise(unetIn, prompt);
        double mergedErr = TensorAssert.MaxAbsDiff(reference, xm);
        output.WriteLine($"bf16 merged x_denoised: max |diff| {mergedErr:G3}");
        Assert.True(mergedErr < 0.1 * scale, "bf16 merged x_denoised strays from float32");

        var image = model.DecodeLatents(xm);
        Assert.Equal(ScalarType.BFloat16, image.dtype);
        double imgErr = (image.to_type(ScalarType.Float32) - referenceImage).abs().mean().item<float>();
        output.WriteLine($"bf16 merged output_image: mean |diff| {imgErr:G3}");
        Assert.True(imgErr < 0.02, "bf16 image strays from float32");
    }

    [Fact]
    public void Tiled_window_blends_per_tile_CFR_and_UNet_results()
    {
        using var model = LoadGoldenModel();
        using var g = GoldenData.Open("dloral_step", "case_dloral_step.safetensors");
        using var scope = NewDisposeScope();
        using var guard = inference_mode();
        // A 512x576 window (latent 64x72): with 64-wide tiles overlapping by 32 the plan is two tiles, at x = 0 and x = 8.
        var frames0 = GoldenFrames();
        var frames = cat([frames0, frames0[.., .., .., .., ..64]], -1);
        var unc0 = g.Load("in.uncertainty_map");
        var uncertainty = cat([unc0, unc0[.., .., .., .., ..8]], -1);
        var prompt = g.Load("in.prompt_embeds");
        var latents = model.EncodeLatents(frames.view(2, 3, 512, 576)).view(1, 2, 4, 64, 72);
        var tiler = new LatentTiler(tileSize: 64, overlap: 32);
        Assert.Equal(2, tiler.Plan(64, 72).Count);

        var x = model.DenoiseWindow(frames, latents, uncertainty, prompt, tiler);
        Assert.Equal(new long[] { 1, 4, 64, 72 }, x.shape);
        // Columns 0..7 are covered by the first tile only: they equal that tile run alone.
        var first = model.DenoiseWindow(frames[.., .., .., .., ..512], latents[.., .., .., .., ..64], uncertainty[.., .., .., .., ..64], prompt);
        Check(first[.., .., .., ..8], x[.., .., .., ..8], 1e-5, 1e-4, "tiled: columns seen by tile 0 only");
        // The blend (LatentTiler's own tests cover its weights) changed the overlap columns: both tiles contributed.
        Assert.True(TensorAssert.MaxAbsDiff(first[.., .., .., 32..64], x[.., .., .., 32..64]) > 1e-4, "overlap ignores tile 1");
    }

    [Fact]
    public void Rejects_windows_that_are_not_previous_current_pairs()
    {
        using var model = LoadGoldenModel();
        using var scope = NewDisposeScope();
        var three = zeros([1, 3, 3, 512, 512]);
        var e = Assert.Throws<ArgumentException>(() => model.Step(three, zeros([1, 2, 1, 64, 64]), zeros(1, 77, 32)));
        Assert.Contains("[n,2,3,H,W]", e.Message, StringComparison.Ordinal);
        var e2 = Assert.Throws<ArgumentException>(() => model.PredictNoise(zeros(1, 4, 8, 8), zeros(1, 77, 32)));
        Assert.Contains("[n,8,h,w]", e2.Message, StringComparison.Ordinal);
    }
}
