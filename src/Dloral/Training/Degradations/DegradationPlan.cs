namespace Dloral.Training.Degradations;

/// <summary>Random resize of one stage: up / down / keep, the factor and the interpolation mode.</summary>
public sealed record ResizeStep(string Kind, double Factor, string Mode);

/// <summary>Noise of one stage: Gaussian (σ in 0–255 units) or Poisson (scale), colour or gray.</summary>
public sealed record NoiseStep(bool Gaussian, double Sigma, double PoissonScale, bool Gray);

/// <summary>One H.264/H.265 round trip of the whole clip.</summary>
public sealed record VideoCodecStep(string Codec, int Crf, string Preset);

/// <summary>
/// Every random choice of one clip's degradation, drawn once by <see cref="Sample"/> and applied
/// identically to all frames (video degradation is consistent over time); only the noise
/// realisation differs per frame (drawn from <see cref="NoiseSeed"/>).
/// </summary>
public sealed record DegradationPlan(
    int Scale,
    BlurKernel Kernel1,
    ResizeStep Resize1,
    NoiseStep Noise1,
    int JpegQuality1,
    bool SecondOrder,
    bool SecondBlur,
    BlurKernel Kernel2,
    ResizeStep Resize2,
    NoiseStep Noise2,
    bool FinalResizeFirst,
    string FinalResizeMode,
    BlurKernel FinalSinc,
    int JpegQuality2,
    VideoCodecStep? Video,
    ulong NoiseSeed)
{
    /// <summary>Draws a plan in the reference's order: kernels, then stage 1, stage 2, final step.</summary>
    public static DegradationPlan Sample(DegradationConfig cfg, int scale, DegradationRandom rng)
    {
        if (scale < 1) throw new ArgumentOutOfRangeException(nameof(scale), scale, "Scale must be >= 1.");
        var ki = cfg.KernelInfo;
        var k1 = BlurKernels.RandomStageKernel(rng, ki.KernelSizeRange, ki.KernelList, ki.KernelProb, ki.SincProb, ki.BlurSigma, ki.BetagRange, ki.BetapRange);
        var k2 = BlurKernels.RandomStageKernel(rng, ki.KernelSizeRange, ki.KernelList2, ki.KernelProb2, ki.SincProb2, ki.BlurSigma2, ki.BetagRange2, ki.BetapRange2);
        var sinc = BlurKernels.RandomFinalSinc(rng, ki.KernelSizeRange, ki.FinalSincProb);

        var r1 = SampleResize(rng, cfg.ResizeProb, cfg.ResizeRange, cfg.ResizeModes);
        var n1 = SampleNoise(rng, cfg.GaussianNoiseProb, cfg.NoiseRange, cfg.PoissonScaleRange, cfg.GrayNoiseProb);
        int q1 = (int)Math.Round(rng.Uniform(cfg.JpegRange));

        bool second = rng.Chance(cfg.SecondOrderProb);
        bool secondBlur = rng.Chance(cfg.SecondBlurProb);
        var r2 = SampleResize(rng, cfg.ResizeProb2, cfg.ResizeRange2, cfg.ResizeModes);
        var n2 = SampleNoise(rng, cfg.GaussianNoiseProb2, cfg.NoiseRange2, cfg.PoissonScaleRange2, cfg.GrayNoiseProb2);

        bool resizeFirst = rng.Chance(cfg.FinalResizeFirstProb);
        string finalMode = rng.Pick(cfg.ResizeModes);
        int q2 = (int)Math.Round(rng.Uniform(cfg.JpegRange2));

        // Drawn before the codec choice so switching the video step on or off keeps every other draw.
        ulong noiseSeed = rng.NextSeed();
        VideoCodecStep? video = null;
        var vc = cfg.VideoCompression;
        if (rng.Chance(vc.Prob))
            video = new VideoCodecStep(vc.Codecs[rng.Weighted(vc.CodecProb)], rng.Int(vc.CrfRange[0], vc.CrfRange[1]), rng.Pick(vc.Presets));

        return new DegradationPlan(scale, k1, r1, n1, q1, second, secondBlur, k2, r2, n2, resizeFirst, finalMode, sinc, q2, video, noiseSeed);
    }

    private static ResizeStep SampleResize(DegradationRandom rng, double[] prob, double[] range, string[] modes)
    {
        int kind = rng.Weighted(prob);
        double factor = kind switch
        {
            0 => rng.Uniform(1, range[1]),
            1 => rng.Uniform(range[0], 1),
            _ => 1,
        };
        return new ResizeStep(kind switch { 0 => "up", 1 => "down", _ => "keep" }, factor, rng.Pick(modes));
    }

    private static NoiseStep SampleNoise(DegradationRandom rng, double gaussianProb, double[] sigmaRange, double[] poissonRange, double grayProb)
    {
        bool gaussian = rng.Chance(gaussianProb);
        double sigma = gaussian ? rng.Uniform(sigmaRange) : 0;
        double scale = gaussian ? 0 : rng.Uniform(poissonRange);
        bool gray = rng.Chance(grayProb);
        return new NoiseStep(gaussian, sigma, scale, gray);
    }
}
