using Dloral.Media;
using Dloral.Pipeline;
using Dloral.Pipeline.Compact;
using Dloral.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Pipeline;

/// <summary>
/// The streaming DLoRAL upscaler on a compact model (pixel-unshuffle codec, learned prompt): sizes, parity with the
/// model's direct step, frame-by-frame independence, no leaks.
/// </summary>
[Collection("DloralEndToEnd")]
public class CompactUpscalerTests(ITestOutputHelper output)
{
    private static string Folder => Path.Combine(GoldenData.RepoRoot, "models", "compact");

    // 64×48 ×4 = 256×192 is already ≥ 64 px and a multiple of 8: no min-size or Lanczos resize, so the output is the
    // model's step itself; no colour fix so it can be compared with the direct step.
    private static readonly DloralVideoOptions Small = new() { MinimumProcessSide = 64, ColorFix = ColorFixMethod.None };

    /// <summary>A random-init compact model saved and loaded again (the shipped-file path).</summary>
    private static CompactDloral SavedAndLoaded(TestMedia media)
    {
        string path = media.PathOf("compact.safetensors");
        using (var built = CompactDloral.Build(Folder)) built.Save(path);
        return CompactDloral.Load(path);
    }

    private static List<Tensor> Clip(TestMedia media, string source = "testsrc2=s=64x48:r=25,rotate=a=0.1*n") => UpscalerDriver.Clip(media, source, 4);

    private static List<Tensor> Run(IUpscaler upscaler, IReadOnlyList<Tensor> frames, Action<int>? afterFrame = null) => UpscalerDriver.Run(upscaler, frames, afterFrame);

    /// <summary>The compact model's input: torch's bicubic (a = −0.75, as the trainer makes it), clamped, [3,h,w] → [1,3,H,W].</summary>
    private static Tensor Bicubic(Tensor frame, int height, int width)
    {
        using var scope = NewDisposeScope();
        return nn.functional.interpolate(frame.unsqueeze(0), size: [height, width], mode: InterpolationMode.Bicubic, align_corners: false)
            .clamp_(0.0, 1.0).MoveToOuterDisposeScope();
    }

    private static void DisposeAll(IEnumerable<Tensor> tensors)
    {
        foreach (var t in tensors) t.Dispose();
    }

    [Fact]
    public void The_compact_model_gets_the_trainers_bicubic_input_and_no_colour_fix_by_default()
    {
        TorchRuntime.Initialize();
        using var media = new TestMedia();
        using var compact = SavedAndLoaded(media);
        var frames = Clip(media);
        // The untrained model (zero-initialised conv_out) run frame by frame is the identity on its input: the output is
        // exactly the trainer's bicubic of the LR frame.
        List<Tensor> single;
        using (var up = new DloralUpscaler(compact, Small with { FrameByFrame = true }, ownsModel: false)) single = Run(up, frames);
        using (var expected = Bicubic(frames[1], 192, 256))
            TensorAssert.Close(expected, single[1].unsqueeze(0), 2e-6, 0, "frame 1 = bicubic input");
        // A model that changes its input (conv_out perturbed): AdaIN would move the output, and is not applied by default.
        CompactPerturbation.PerturbConvOut(compact.Model.Unet, 7);
        List<Tensor> byDefault, none, adain;
        using (var up = new DloralUpscaler(compact, Small with { ColorFix = null }, ownsModel: false)) byDefault = Run(up, frames);
        using (var up = new DloralUpscaler(compact, Small, ownsModel: false)) none = Run(up, frames);
        using (var up = new DloralUpscaler(compact, Small with { ColorFix = ColorFixMethod.Adain }, ownsModel: false)) adain = Run(up, frames);
        for (int k = 0; k < frames.Count; k++)
        {
            TensorAssert.Equal(none[k], byDefault[k], $"frame {k}: default = no colour fix");
            Assert.True(adain[k].sub(none[k]).abs().max().item<float>() > 1e-4, $"frame {k}: AdaIN changes the output");
        }
        DisposeAll(byDefault.Concat(none).Concat(adain).Concat(single).Concat(frames));
    }

    [Fact]
    public void Streams_a_clip_at_scale_and_matches_the_direct_model_step_without_leaks()
    {
        TorchRuntime.Initialize();
        using var media = new TestMedia();
        using var compact = SavedAndLoaded(media);
        var frames = Clip(media);
        var live = new List<long>();
        List<Tensor> streamed;
        using (var up = new DloralUpscaler(compact, Small, ownsModel: false))
        {
            Assert.Equal((192, 256), DloralUpscaler.ProcessSize(48, 64, 4, 64, compact.Model.Codec.DownscaleFactor));
            streamed = Run(up, frames, _ => live.Add(DisposeScopeManager.Statistics.ThreadTotalLiveCount));
            Assert.Equal(4, up.Timings.Frames);
            Assert.Equal(4, up.Timings.Encodes);   // each frame encoded once, through the pixel-unshuffle codec
            Assert.True(up.Timings.VaeEncode > TimeSpan.Zero && up.Timings.VaeDecode > TimeSpan.Zero);
        }
        try
        {
            output.WriteLine($"live tensors after each frame: {string.Join(" ", live)}");
            // The cache holds two frames from frame 1 on; only the outputs the test keeps are added per frame.
            Assert.Equal(live[1] + 1, live[2]);
            Assert.Equal(4, streamed.Count);
            Assert.All(streamed, t => Assert.Equal(new long[] { 3, 192, 256 }, t.shape));
            Assert.All(streamed, t => Assert.True(t.min().item<float>() >= 0 && t.max().item<float>() <= 1));

            using var mode = inference_mode();
            for (int k = 0; k < frames.Count; k++)
            {
                using var scope = NewDisposeScope();
                int prev = k == 0 ? 1 : k - 1;   // frame 0 starts the clip: paired with the next frame
                var hr = stack([Bicubic(frames[prev], 192, 256), Bicubic(frames[k], 192, 256)], 1).mul(2.0).sub(1.0); // [1,2,3,H,W]
                using var step = compact.Model.Step(hr, compact.UncertaintyOf(hr), compact.Prompt);
                var expected = step.OutputImage.squeeze(0).add(1.0).div(2.0);
                double diff = TensorAssert.MaxAbsDiff(expected, streamed[k]);
                output.WriteLine($"frame {k}: streamed vs direct step max |diff| {diff:E2}");
                TensorAssert.Close(expected, streamed[k], 1e-5, 1e-5, $"frame {k}");
            }
        }
        finally
        {
            DisposeAll(streamed);
            DisposeAll(frames);
        }
    }

    [Fact]
    public void A_recurrent_model_carries_each_restored_frame_into_the_next_window()
    {
        TorchRuntime.Initialize();
        using var media = new TestMedia();
        using var compact = SavedAndLoaded(media);
        var frames = Clip(media, "testsrc2=s=64x48:r=25,scroll=h=0.01:v=0.005");
        // A model that changes its input (the untrained one is the identity, which would hide the recurrence).
        CompactPerturbation.PerturbConvOut(compact.Model.Unet, 11);
        compact.Reconfigure(flow: Dloral.Temporal.CrossFrameFlow.LucasKanade, warpFrames: true, recurrentPrevious: false);
        List<Tensor> plain, recurrent, again;
        using (var up = new DloralUpscaler(compact, Small, ownsModel: false)) plain = Run(up, frames);
        compact.Reconfigure(recurrentPrevious: true);
        using (var up = new DloralUpscaler(compact, Small, ownsModel: false) { CacheLatents = false }) recurrent = Run(up, frames);
        using (var up = new DloralUpscaler(compact, Small, ownsModel: false)) again = Run(up, frames);
        try
        {
            // Frame 0 starts the clip (paired with frame 1's input) in both modes; later frames see the restored previous one.
            TensorAssert.Equal(plain[0], recurrent[0], "frame 0");
            for (int k = 1; k < frames.Count; k++)
                Assert.True(recurrent[k].sub(plain[k]).abs().max().item<float>() > 1e-4, $"frame {k}: the restored previous frame is used");
            for (int k = 0; k < frames.Count; k++) TensorAssert.Equal(recurrent[k], again[k], $"frame {k}: deterministic, cached or not");

            using var mode = inference_mode();
            Tensor? restored = null;
            for (int k = 0; k < frames.Count; k++)
            {
                using var scope = NewDisposeScope();
                int prev = k == 0 ? 1 : k - 1;
                var hr = stack([Bicubic(frames[prev], 192, 256), Bicubic(frames[k], 192, 256)], 1).mul(2.0).sub(1.0);
                var latents = compact.Model.EncodeLatents(hr.view(2, 3, 192, 256)).unsqueeze(0);
                if (restored is not null) latents = cat([restored.unsqueeze(1), latents.narrow(1, 1, 1)], 1);
                using var step = compact.Model.Step(hr, compact.UncertaintyOf(hr), compact.Prompt, latents);
                restored?.Dispose();
                restored = step.XDenoised.clone().DetachFromDisposeScope();
                var expected = step.OutputImage.squeeze(0).add(1.0).div(2.0);
                output.WriteLine($"frame {k}: streamed vs direct recurrent step max |diff| {TensorAssert.MaxAbsDiff(expected, recurrent[k]):E2}");
                TensorAssert.Close(expected, recurrent[k], 1e-5, 1e-5, $"frame {k}");
            }
            restored?.Dispose();
        }
        finally
        {
            DisposeAll(plain.Concat(recurrent).Concat(again).Concat(frames));
        }
    }

    [Fact]
    public void A_codec_factor_other_than_8_sets_the_process_size_latent_grid_and_uncertainty_map()
    {
        TorchRuntime.Initialize();
        // The compact architecture with a 1/4 pixel-unshuffle (48-channel latents): nothing in the pipeline may assume 8.
        var (compactJson, unetJson) = CompactConfigFiles.WithFactor(4);
        using var compact = CompactDloral.Build(CompactDloralConfig.Parse(compactJson, unetJson, "factor-4 test config"));
        Assert.Equal(4, compact.Model.Codec.DownscaleFactor);
        // 17×13 ×4 = 68×52: rounded down to a multiple of 4, not of 8.
        Assert.Equal((52, 68), DloralUpscaler.ProcessSize(13, 17, 4, 52, 4));
        Assert.Equal((48, 64), DloralUpscaler.ProcessSize(13, 17, 4, 52));
        using var media = new TestMedia();
        var frames = Clip(media).Take(3).ToList();
        List<Tensor>? streamed = null;
        try
        {
            using (var up = new DloralUpscaler(compact, Small, ownsModel: false)) streamed = Run(up, frames);
            using var mode = inference_mode();
            for (int k = 1; k < frames.Count; k++)
            {
                using var scope = NewDisposeScope();
                var hr = stack([Bicubic(frames[k - 1], 192, 256), Bicubic(frames[k], 192, 256)], 1).mul(2.0).sub(1.0);
                var uncertainty = compact.UncertaintyOf(hr);   // 1/8 map resized to the 48×64 latent grid, as in training
                Assert.Equal(new long[] { 1, 1, 1, 48, 64 }, uncertainty.shape);
                Assert.True(uncertainty.sum().item<float>() > 0, "the moving clip has uncertain regions");
                using var step = compact.Model.Step(hr, uncertainty, compact.Prompt);
                TensorAssert.Close(step.OutputImage.squeeze(0).add(1.0).div(2.0), streamed[k], 1e-5, 1e-5, $"frame {k} at f = 4");
            }
        }
        finally
        {
            if (streamed is not null) DisposeAll(streamed);
            DisposeAll(frames);
        }
    }

    [Fact]
    public void Frame_by_frame_output_does_not_depend_on_the_previous_frame_and_equals_the_single_frame_step()
    {
        TorchRuntime.Initialize();
        using var media = new TestMedia();
        using var compact = CompactDloral.Build(Folder);
        var frames = Clip(media);
        var changed = frames.Select((f, i) => i == 0 ? (1.0 - f).DetachFromDisposeScope() : f).ToList();
        List<Tensor>? alone = null, aloneChanged = null, temporal = null, temporalChanged = null;
        try
        {
            var single = Small with { FrameByFrame = true };
            using (var up = new DloralUpscaler(compact, single, ownsModel: false))
            {
                Assert.Equal(0, up.FramesBefore);
                Assert.Equal(0, up.FramesAfter);
                alone = Run(up, frames);
            }
            using (var up = new DloralUpscaler(compact, single, ownsModel: false)) aloneChanged = Run(up, changed);
            // An inverted frame 0 is a scene cut; the temporal runs must still pair frame 1 with it.
            var linked = Small with { DetectSceneCuts = false };
            using (var up = new DloralUpscaler(compact, linked, ownsModel: false)) temporal = Run(up, frames.Take(2).ToList());
            using (var up = new DloralUpscaler(compact, linked, ownsModel: false)) temporalChanged = Run(up, changed.Take(2).ToList());

            Assert.True(TensorAssert.MaxAbsDiff(alone[0], aloneChanged[0]) > 1e-2, "frame 0 itself changed");
            for (int k = 1; k < frames.Count; k++) TensorAssert.Equal(alone[k], aloneChanged[k], $"frame {k} alone");
            // The temporal model does look at the previous frame (so the check above can fail).
            double temporalDiff = TensorAssert.MaxAbsDiff(temporal[1], temporalChanged[1]);
            output.WriteLine($"temporal frame 1 after changing frame 0: max |diff| {temporalDiff:E2}");
            Assert.True(temporalDiff > 1e-4, $"temporal output ignored the previous frame ({temporalDiff})");
            Assert.True(TensorAssert.MaxAbsDiff(alone[1], temporal[1]) > 1e-4, "frame-by-frame equals temporal");

            // Frame-by-frame = decode(z − ε̂([z ‖ z])): the model's public single-frame input, also what trainers use.
            using var mode = inference_mode();
            using var scope = NewDisposeScope();
            var hr = Bicubic(frames[2], 192, 256).mul(2.0).sub(1.0);
            var z = compact.Model.EncodeLatents(hr);
            var input = compact.Model.SingleFrameInput(z);
            int f = compact.Config.CodecFactor, c = 3 * f * f;
            Assert.Equal(new long[] { 1, 2 * c, 192 / f, 256 / f }, input.shape);
            TensorAssert.Equal(input.narrow(1, 0, c), input.narrow(1, c, c), "[z ‖ z]");
            var expected = compact.Model.DecodeLatents(compact.Model.DenoiseSingleFrame(z, compact.Prompt)).squeeze(0).add(1.0).div(2.0);
            TensorAssert.Close(expected, alone[2], 1e-5, 1e-5, "frame 2 alone vs DenoiseSingleFrame");
        }
        finally
        {
            foreach (var list in new[] { alone, aloneChanged, temporal, temporalChanged }) if (list is not null) DisposeAll(list);
            changed[0].Dispose();
            DisposeAll(frames);
        }
    }

    [Fact]
    public void The_upscale_path_loads_a_channels_last_UNet_that_gives_the_same_video()
    {
        TorchRuntime.Initialize();
        using var media = new TestMedia();
        string path = media.PathOf("compact.safetensors");
        using (var built = CompactDloral.Build(Folder))
        {
            CompactPerturbation.PerturbConvOut(built.Model.Unet, 11); // not the identity
            built.Save(path);
        }
        var frames = Clip(media);
        List<Tensor> nchw, nhwc;
        using (var plain = CompactDloral.Load(path))
        using (var up = new DloralUpscaler(plain, Small, ownsModel: false))
        {
            Assert.False(plain.Model.Unet.ChannelsLast);
            nchw = Run(up, frames);
        }
        using (var up = (DloralUpscaler)DloralModelSource.TryCreate(path, Small)!)
        {
            Assert.True(up.Model.Unet.ChannelsLast, "dloral upscale runs the compact UNet channels-last");
            nhwc = Run(up, frames);
        }
        for (int i = 0; i < frames.Count; i++)
        {
            double diff = TensorAssert.MaxAbsDiff(nchw[i], nhwc[i]);
            output.WriteLine($"frame {i}: channels-last vs NCHW max |diff| {diff:E2}");
            Assert.True(diff < 1e-4, $"frame {i}: {diff}");
        }
        DisposeAll(nchw.Concat(nhwc).Concat(frames));
    }

    [Fact]
    public void The_compact_upscaler_folds_the_adapters_into_the_weights_and_gives_the_unmerged_result()
    {
        TorchRuntime.Initialize();
        using var media = new TestMedia();
        var frames = UpscalerDriver.Clip(media, "testsrc2=s=64x48:r=25,rotate=a=0.1*n", 3);
        // The shipped weights: trained adapters, so merging changes the UNet's weights.
        using var compact = CompactDloral.Load(GoldenData.ShippedCompactWeights);
        Assert.False(compact.Model.Adapters.MergeAdapters, "a loaded file is unmerged");
        using var up = new DloralUpscaler(compact, Small, ownsModel: false);
        Assert.True(compact.Model.Adapters.MergeAdapters, "the upscaler merges the compact model's adapters");
        Assert.True(up.Options.Adapters.MergeAdapters);
        var merged = Run(up, frames);
        up.Reset();
        compact.Model.Configure(compact.Model.Adapters with { MergeAdapters = false });
        var unmerged = Run(up, frames);
        for (int i = 0; i < frames.Count; i++)
        {
            double diff = TensorAssert.MaxAbsDiff(merged[i], unmerged[i]);
            using var bicubic = Bicubic(frames[i], 192, 256);
            double moved = TensorAssert.MaxAbsDiff(merged[i].unsqueeze(0), bicubic);
            output.WriteLine($"frame {i}: merged vs unmerged max |diff| {diff:E2} (output vs its bicubic input {moved:E2})");
            Assert.True(diff < 1e-4, $"frame {i}: {diff}");
            Assert.True(moved > 1e-2, $"frame {i}: the trained model changes its input");
        }
        DisposeAll(merged.Concat(unmerged).Concat(frames));
    }

    [Fact]
    public void Latent_tiles_run_on_compact_latents_and_the_scale_must_match_the_model()
    {
        TorchRuntime.Initialize();
        using var media = new TestMedia();
        using var compact = CompactDloral.Build(Folder);
        var frames = Clip(media).Take(2).ToList();
        List<Tensor>? whole = null, tiled = null, bf16 = null, allBf16 = null;
        try
        {
            using (var up = new DloralUpscaler(compact, Small, ownsModel: false)) whole = Run(up, frames);
            // Latent 24×32 in 16×16 tiles overlapping by 8: CFR + UNet per tile, pixels cropped at the codec's factor.
            using (var up = new DloralUpscaler(compact, Small with { TileSize = 16, TileOverlap = 8 }, ownsModel: false)) tiled = Run(up, frames);
            for (int i = 0; i < frames.Count; i++)
            {
                Assert.Equal(whole[i].shape, tiled[i].shape);
                double mean = (whole[i] - tiled[i]).abs().mean().item<float>();
                output.WriteLine($"frame {i}: tiled vs whole mean |diff| {mean:E2}");
                Assert.True(tiled[i].isfinite().all().item<bool>());
                Assert.True(mean > 0, "the tiled path did not tile");
            }
            var wrong = Assert.Throws<UpscaleOptionsException>(() => new DloralUpscaler(compact, Small with { Scale = 2 }, ownsModel: false));
            Assert.Contains("x4", wrong.Message);

            // bfloat16 weights (CPU inference) run the same pipeline close to float32.
            compact.ToDType(ScalarType.BFloat16);
            // Mixed precision: only the UNet (and its prompt) computes in bfloat16; the lossless codec, CFR and z − ε̂ stay float32.
            Assert.Equal(ScalarType.BFloat16, compact.Model.Unet.parameters().First().dtype);
            Assert.Equal(ScalarType.BFloat16, compact.Prompt.dtype);
            Assert.Equal(ScalarType.Float32, compact.Model.Codec.DType);
            Assert.All(compact.Model.Cfr.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
            using (var up = new DloralUpscaler(compact, Small with { DType = ScalarType.BFloat16 }, ownsModel: false)) bf16 = Run(up, frames);
            // Everything in bfloat16 (how it ran before): the skip path and the codec round the latents too.
            compact.Model.Cfr.to(ScalarType.BFloat16);
            ((Dloral.Pipeline.Codecs.PixelUnshuffleCodec)compact.Model.Codec).ToDType(ScalarType.BFloat16);
            using (var up = new DloralUpscaler(compact, Small with { DType = ScalarType.BFloat16 }, ownsModel: false)) allBf16 = Run(up, frames);
            for (int i = 0; i < frames.Count; i++)
            {
                Assert.Equal(ScalarType.Float32, bf16[i].dtype);
                double mean = (whole[i] - bf16[i]).abs().mean().item<float>(), meanAll = (whole[i] - allBf16[i]).abs().mean().item<float>();
                output.WriteLine($"frame {i}: bf16 UNet vs f32 mean |diff| {mean:E2}; all-bf16 vs f32 {meanAll:E2}");
                Assert.True(mean < 0.05, $"bf16 mean diff {mean}");
                // This model is the identity (conv_out starts at zero): with the float32 skip path its bf16 output is exact.
                Assert.True(mean < 1e-6 && meanAll > 1e-4, $"mixed precision keeps the skip path exact ({mean:E2} vs all-bf16 {meanAll:E2})");
            }
        }
        finally
        {
            foreach (var list in new[] { whole, tiled, bf16, allBf16 }) if (list is not null) DisposeAll(list);
            DisposeAll(frames);
        }
    }
}
