using System.Diagnostics;
using Dloral.Tests.Support;
using Dloral.Training.Degradations;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Training;

public class DegradationTests
{
    private readonly ITestOutputHelper _out;

    public DegradationTests(ITestOutputHelper output) => _out = output;

    /// <summary>A smooth, textured synthetic photo: T copies (or T shifted views) of a seeded random field.</summary>
    internal static Tensor TexturedClip(int t, int h, int w, long seed, bool identicalFrames = true)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator((ulong)seed);
        var coarse = randn([1, 3, h / 8 + 2, w / 8 + 2], generator: gen);
        var fine = randn([1, 3, h / 2 + 2, w / 2 + 2], generator: gen).mul(0.3);
        var img = nn.functional.interpolate(coarse, [h + 8, w + 8], mode: InterpolationMode.Bicubic, align_corners: false)
                  + nn.functional.interpolate(fine, [h + 8, w + 8], mode: InterpolationMode.Bilinear, align_corners: false);
        img = sigmoid(img);
        var frames = Enumerable.Range(0, t).Select(i => identicalFrames ? img[.., .., 4..(h + 4), 4..(w + 4)] : img[.., .., 4..(h + 4), (4 + i)..(w + 4 + i)]).ToArray();
        return cat(frames, 0).contiguous().MoveToOuterDisposeScope();
    }

    private static DegradationConfig NoVideo(DegradationConfig c)
    {
        c.VideoCompression.Prob = 0;
        return c;
    }

    [Fact]
    public void Kernels_sum_to_one_are_odd_and_within_the_configured_size_range()
    {
        var cfg = DegradationConfig.Dloral();
        var seen = new HashSet<BlurKernelType>();
        for (int seed = 0; seed < 400; seed++)
        {
            var plan = DegradationPlan.Sample(cfg, 4, new DegradationRandom(seed));
            foreach (var k in new[] { plan.Kernel1, plan.Kernel2, plan.FinalSinc })
            {
                seen.Add(k.Type);
                Assert.Equal(k.Size * k.Size, k.Values.Length);
                Assert.Equal(1.0, k.Sum, 9);
                if (k.Type == BlurKernelType.Pulse) continue;
                Assert.True(k.Size % 2 == 1 && k.Size >= 7 && k.Size <= 21, $"kernel size {k.Size}");
            }
            Assert.InRange(plan.Kernel1.SigmaX, 0, 3.0);
            Assert.InRange(plan.Kernel2.SigmaX, 0, 1.5);
        }
        // every family of the reference appears with its probabilities over 400 clips
        foreach (var t in Enum.GetValues<BlurKernelType>())
            Assert.Contains(t, seen);

        // a kernel's mass is centred and the Gaussian's spread follows σ
        var iso = BlurKernels.Gaussian(BlurKernelType.Iso, 21, 2.0, 2.0, 0, 1);
        double varX = 0;
        for (int y = 0; y < 21; y++)
        for (int x = 0; x < 21; x++)
            varX += iso.Values[y * 21 + x] * (x - 10) * (x - 10);
        Assert.Equal(4.0, varX, 1);

        // Bessel J1 against tabulated values (the sinc kernel depends on it)
        Assert.Equal(0.4400505857, BlurKernels.BesselJ1(1), 7);
        Assert.Equal(-0.3275791376, BlurKernels.BesselJ1(5), 7);
        Assert.Equal(0.0434727462, BlurKernels.BesselJ1(10), 7);
        Assert.Equal(-0.4400505857, BlurKernels.BesselJ1(-1), 7);
    }

    [Theory]
    [InlineData(BlurKernelType.Aniso, 21, 64, 48)]
    [InlineData(BlurKernelType.Sinc, 13, 40, 40)]
    [InlineData(BlurKernelType.PlateauIso, 21, 12, 9)]
    public void Fft_blur_equals_direct_convolution(BlurKernelType type, int size, int h, int w)
    {
        using var x = TexturedClip(2, h, w, seed: 4);
        var k = type == BlurKernelType.Sinc ? BlurKernels.Sinc(1.3, size) : BlurKernels.Gaussian(type, size, 2.5, 1.1, 0.7, 1.5);
        int saved = Degrader.FftMinKernel;
        try
        {
            Degrader.FftMinKernel = 1000;
            using var direct = Degrader.Filter2D(x, k);
            Degrader.FftMinKernel = 1;
            using var viaFft = Degrader.Filter2D(x, k);
            Assert.Equal(x.shape, viaFft.shape);
            Assert.True(direct.sub(viaFft).abs().max().item<float>() < 2e-5f);
            // a blur keeps the mean and lowers the variation
            Assert.True(viaFft.std().item<float>() < x.std().item<float>());
        }
        finally
        {
            Degrader.FftMinKernel = saved;
        }
    }

    [Fact]
    public void Gaussian_noise_sigma_on_a_flat_image_is_the_planned_sigma_within_the_configured_range()
    {
        var cfg = DegradationConfig.Dloral();
        using var flat = full(new long[] { 3, 3, 96, 96 }, 0.5f);
        int gaussians = 0;
        for (int seed = 0; seed < 40; seed++)
        {
            var plan = DegradationPlan.Sample(cfg, 4, new DegradationRandom(seed));
            if (!plan.Noise1.Gaussian) continue;
            gaussians++;
            Assert.InRange(plan.Noise1.Sigma, cfg.NoiseRange[0], cfg.NoiseRange[1]);
            using var noisy = Degrader.AddNoise(flat, plan.Noise1, new Generator((ulong)seed));
            double measured = noisy.sub(0.5).std().item<float>() * 255;
            Assert.InRange(measured, plan.Noise1.Sigma * 0.95, plan.Noise1.Sigma * 1.05);
            Assert.InRange(measured, cfg.NoiseRange[0] * 0.95, cfg.NoiseRange[1] * 1.05);
            if (plan.Noise1.Gray)
            {
                // gray noise: the same value in all three channels
                Assert.Equal(0f, noisy[.., 0].sub(noisy[.., 2]).abs().max().item<float>());
            }
        }
        Assert.True(gaussians >= 10, $"only {gaussians} Gaussian-noise plans");
    }

    [Fact]
    public void Poisson_noise_follows_shot_noise_statistics_and_scale()
    {
        // a ramp over all 256 levels: vals = 256, so the noise std at level v is sqrt(v/256)·scale
        using var ramp = linspace(0, 1, 256).mul(255).round().div(255).reshape(1, 1, 1, 256).expand(4, 3, 64, 256).contiguous();
        using var n1 = Degrader.PoissonNoise(ramp, 1.0, false, new Generator(7));
        using var n2 = Degrader.PoissonNoise(ramp, 2.0, false, new Generator(7));
        double StdAt(Tensor n, int col) => n[.., .., .., col].std().item<float>();
        Assert.InRange(StdAt(n1, 204), Math.Sqrt(0.8 / 256) * 0.9, Math.Sqrt(0.8 / 256) * 1.1);
        Assert.InRange(StdAt(n1, 26), Math.Sqrt(0.1 / 256) * 0.85, Math.Sqrt(0.1 / 256) * 1.15);
        Assert.Equal(2.0, StdAt(n2, 204) / StdAt(n1, 204), 6);
        // gray Poisson noise is the same in every channel
        using var g = Degrader.PoissonNoise(ramp, 1.0, true, new Generator(7));
        Assert.Equal(0f, g[.., 0].sub(g[.., 1]).abs().max().item<float>());
    }

    [Fact]
    public void All_frames_of_a_clip_share_kernel_resize_and_jpeg_while_noise_differs_per_frame()
    {
        using var hr = TexturedClip(3, 64, 64, seed: 5);
        // no noise: identical input frames must give bit-identical output frames (same kernels,
        // resize factors/modes, JPEG qualities for all frames)
        var quiet = NoVideo(DegradationConfig.Dloral());
        quiet.GaussianNoiseProb = 1; quiet.NoiseRange = [0, 0];
        quiet.GaussianNoiseProb2 = 1; quiet.NoiseRange2 = [0, 0];
        var degrader = new Degrader(quiet);
        for (int seed = 0; seed < 6; seed++)
        {
            using var lr = degrader.DegradeClip(hr, 4, seed);
            Assert.Equal(0f, lr[0].sub(lr[1]).abs().max().item<float>());
            Assert.Equal(0f, lr[1].sub(lr[2]).abs().max().item<float>());
        }

        // with noise: frames differ, by about the planned σ
        var noisy = NoVideo(DegradationConfig.Dloral());
        noisy.GaussianNoiseProb = 1; noisy.NoiseRange = [12, 12]; noisy.GrayNoiseProb = 0;
        noisy.SecondOrderProb = 0; noisy.ResizeProb = [0, 0, 1]; noisy.JpegRange = [95, 95]; noisy.JpegRange2 = [95, 95];
        noisy.KernelInfo.FinalSincProb = 0;
        using var lr2 = new Degrader(noisy).DegradeClip(hr, 1, 3);
        double diff = lr2[0].sub(lr2[1]).std().item<float>() * 255;
        Assert.True(diff > 5, $"frame difference std {diff:F2} (0–255): the noise must differ per frame");
    }

    [Fact]
    public void Same_seed_gives_identical_bytes_and_another_seed_differs()
    {
        using var hr = TexturedClip(3, 64, 64, seed: 11);
        var cfg = DegradationConfig.Dloral();
        cfg.VideoCompression.Prob = 1;
        var d = new Degrader(cfg);
        using var a = d.DegradeClip(hr, 4, 42, out var planA);
        using var b = d.DegradeClip(hr, 4, 42, out var planB);
        using var c = d.DegradeClip(hr, 4, 43);
        Assert.Equal(planA.ToString(), planB.ToString());
        Assert.Equal(FrameBytes.ToRgb24(a), FrameBytes.ToRgb24(b));
        Assert.Equal(0f, a.sub(b).abs().max().item<float>());
        Assert.True(a.sub(c).abs().max().item<float>() > 0.01f);
    }

    [Theory]
    [InlineData(4, 64, 48)]
    [InlineData(2, 40, 56)]
    [InlineData(4, 36, 52)]
    public void Output_size_is_input_over_scale_and_values_are_8bit_in_unit_range(int scale, int h, int w)
    {
        using var hr = TexturedClip(3, h, w, seed: 2);
        var d = new Degrader(NoVideo(DegradationConfig.Dloral()));
        for (int seed = 0; seed < 8; seed++)
        {
            using var lr = d.DegradeClip(hr, scale, seed);
            Assert.Equal(new long[] { 3, 3, h / scale, w / scale }, lr.shape);
            Assert.True(lr.min().item<float>() >= 0 && lr.max().item<float>() <= 1);
            using var levels = lr.mul(255);
            Assert.Equal(0f, levels.sub(levels.round()).abs().max().item<float>(), 3);
        }
    }

    [Theory]
    [InlineData("libx264", 48, 40)]
    [InlineData("libx264", 37, 45)]
    [InlineData("libx265", 48, 40)]
    public void Video_codec_round_trip_changes_frames_but_keeps_count_and_size(string codec, int h, int w)
    {
        using var clip = TexturedClip(5, h, w, seed: 9, identicalFrames: false);
        using var quantised = clip.mul(255).round().div(255);
        using var back = VideoCompression.RoundTrip(quantised, new VideoCodecStep(codec, 30, "veryfast"));
        Assert.Equal(quantised.shape, back.shape);
        double mae = back.sub(quantised).abs().mean().item<float>() * 255;
        double mse = back.sub(quantised).square().mean().item<float>();
        double psnr = 10 * Math.Log10(1 / mse);
        _out.WriteLine($"{codec} {w}x{h} crf 30: mean abs diff {mae:F2}/255, PSNR {psnr:F1} dB");
        Assert.True(mae > 0.3, $"codec left the frames unchanged (MAE {mae:F3})");
        Assert.True(psnr > 22, $"codec output is not the same picture (PSNR {psnr:F1} dB)");
    }

    [Fact]
    public void Config_files_reproduce_the_presets_and_bad_values_name_the_key()
    {
        var dloral = DegradationConfig.Load(Path.Combine(GoldenData.RepoRoot, "configs", "degradations", "dloral.json"));
        Assert.Equal(DegradationConfig.Dloral().ToJson(), dloral.ToJson());
        var light = DegradationConfig.Load(Path.Combine(GoldenData.RepoRoot, "configs", "degradations", "light.json"));
        Assert.Equal(DegradationConfig.Light().ToJson(), light.ToJson());
        Assert.Equal(DegradationConfig.Dloral().ToJson(), DegradationConfig.Parse(dloral.ToJson()).ToJson());

        var e = Assert.Throws<InvalidDataException>(() => DegradationConfig.Parse("""{ "noise_range": [15, 1] }"""));
        Assert.Contains("noise_range", e.Message);
        e = Assert.Throws<InvalidDataException>(() => DegradationConfig.Parse("""{ "kernel_info": { "kernel_size_range": [8, 21] } }"""));
        Assert.Contains("kernel_size_range", e.Message);
        Assert.ThrowsAny<Exception>(() => DegradationConfig.Parse("""{ "noise_rang": [1, 2] }"""));
    }

    [Fact]
    public void Video_step_on_top_of_the_same_plan_and_timing_of_a_3_frame_256_clip()
    {
        using var hr = TexturedClip(3, 256, 256, seed: 1);
        Tensor[] outs = new Tensor[2];
        DegradationPlan[] plans = new DegradationPlan[2];
        foreach (var video in new[] { 0, 1 })
        {
            var cfg = DegradationConfig.Dloral();
            cfg.VideoCompression.Prob = video;
            cfg.VideoCompression.Codecs = ["libx264"];
            cfg.VideoCompression.CodecProb = [1];
            var d = new Degrader(cfg);
            d.DegradeClip(hr, 4, 0).Dispose(); // warm-up
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            const int n = 3;
            for (int i = 0; i < n; i++) d.DegradeClip(hr, 4, 100 + i).Dispose();
            _out.WriteLine($"3x256² second-order degradation, video step {(video > 0 ? "libx264" : "off")}: wall {sw.Elapsed.TotalMilliseconds / n:F1} ms/clip, " +
                           $"in-process CPU {(Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds / n:F1} ms/clip ({torch.get_num_threads()} threads)");
            outs[video] = d.DegradeClip(hr, 4, 7, out plans[video]);
        }
        // switching the codec step on changes nothing else in the plan; it changes the frames a little
        Assert.Null(plans[0].Video);
        Assert.NotNull(plans[1].Video);
        Assert.Equal((plans[0] with { Video = null }).ToString(), (plans[1] with { Video = null }).ToString());
        Assert.Equal(plans[0].Kernel1.Values, plans[1].Kernel1.Values);
        Assert.Equal(plans[0].FinalSinc.Values, plans[1].FinalSinc.Values);
        Assert.Equal(outs[0].shape, outs[1].shape);
        double mse = outs[0].sub(outs[1]).square().mean().item<float>();
        Assert.True(mse > 0, "the H.264 step must change the frames");
        Assert.True(10 * Math.Log10(1 / mse) > 20, "the H.264 step must keep the picture");
        foreach (var o in outs) o.Dispose();
    }
}
