using Dloral.Diffusion;
using Dloral.Tests.Support;
using static TorchSharp.torch;

namespace Dloral.Tests.Diffusion;

public class DdpmScheduleTests
{
    private static DdpmSchedule Sd21() => DdpmSchedule.FromConfigFile(GoldenData.PathOf("tiny_sd", "scheduler", "scheduler_config.json"));

    [Fact]
    public void Sd21_schedule_equals_the_reference_bit_for_bit()
    {
        using var s = Sd21();
        Assert.Equal("scaled_linear", s.BetaSchedule);
        Assert.Equal(PredictionType.Epsilon, s.PredictionType);
        using var golden = GoldenData.Open("pipeline_bits", "case_pipeline_bits.safetensors");
        using var betas = golden.Load("sched.betas");
        using var alphas = golden.Load("sched.alphas");
        using var cumprod = golden.Load("sched.alphas_cumprod");
        TensorAssert.Equal(betas, s.Betas, "betas");
        TensorAssert.Equal(alphas, s.Alphas, "alphas");
        TensorAssert.Equal(cumprod, s.AlphasCumprod, "alphas_cumprod");
        Assert.Equal(0.998296, s.AlphasCumprod[1].item<float>(), 6);

        using var ts = golden.Load("sched.timesteps_after_set_timesteps_1");
        Assert.Equal(ts.data<long>().ToArray(), s.InferenceTimesteps(1));
        // Leading spacing with steps_offset 1, as diffusers: 50 steps → 981, 961, ..., 1.
        var fifty = s.InferenceTimesteps(50);
        Assert.Equal(981, fifty[0]);
        Assert.Equal(1, fifty[^1]);
    }

    [Fact]
    public void Linear_schedule_and_noise_helpers_roundtrip()
    {
        using var s = new DdpmSchedule(1000, 0.0001, 0.02, "linear");
        Assert.Equal(0.0001f, s.Betas[0].item<float>(), 7);
        Assert.Equal(0.02f, s.Betas[999].item<float>(), 7);

        using var sd = Sd21();
        var gen = manual_seed(3);
        using var x0 = randn(2, 4, 8, 8, generator: gen);
        using var eps = randn(2, 4, 8, 8, generator: gen);
        using var t = tensor(new long[] { 1, 999 });
        using var xt = sd.AddNoise(x0, eps, t);
        // Sample 0 at t=1 is almost clean; sample 1 at t=999 is almost pure noise.
        var ac1 = sd.AlphasCumprod[1].item<float>();
        using var expected0 = x0[0] * MathF.Sqrt(ac1) + eps[0] * MathF.Sqrt(1 - ac1);
        TensorAssert.Close(expected0, xt[0], 1e-6, 1e-6, "add_noise t=1");
        using var x0Back = sd.EpsilonToSample(xt, eps, t);
        TensorAssert.Close(x0, x0Back, 1e-3, 1e-4, "eps -> x0");
        using var epsBack = sd.SampleToEpsilon(xt, x0, t);
        TensorAssert.Close(eps, epsBack, 1e-4, 1e-4, "x0 -> eps");
        using var pred = sd.PredictOriginalSample(xt, eps, t);
        TensorAssert.Equal(x0Back, pred, "PredictOriginalSample(epsilon)");
        Assert.Throws<ArgumentOutOfRangeException>(() => sd.AddNoise(x0, eps, tensor(new long[] { 1000, 0 })));
    }

    [Fact]
    public void Unknown_beta_schedule_is_a_clear_error()
    {
        var e = Assert.Throws<NotSupportedException>(() => DdpmSchedule.FromConfigJson("""{"beta_schedule": "sigmoid"}"""));
        Assert.Contains("sigmoid", e.Message);
    }
}
