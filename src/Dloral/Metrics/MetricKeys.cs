namespace Dloral.Metrics;

/// <summary>The plain JSON keys of <c>dloral eval</c> reports, and what each one means.</summary>
public static class MetricKeys
{
    public const string PsnrY = "psnr_y";
    public const string SsimY = "ssim_y";
    public const string PsnrRgb = "psnr_rgb";
    public const string SsimRgb = "ssim_rgb";
    public const string FeatureDistance = ResNet18FeatureDistance.Key;
    public const string WarpingError = "warping_error";
    public const string WarpingErrorMse = "warping_error_mse";
    public const string Tof = "tof";
    public const string GradientEnergy = "gradient_energy";
    public const string NoiseSigma = "noise_sigma";

    /// <summary>All keys in report order.</summary>
    public static readonly string[] All = [PsnrY, SsimY, PsnrRgb, SsimRgb, FeatureDistance, WarpingError, WarpingErrorMse, Tof, GradientEnergy, NoiseSigma];

    /// <summary>True when larger values are better (used for the ▲/▼ hints in the Markdown table).</summary>
    public static bool HigherIsBetter(string key) => key is PsnrY or SsimY or PsnrRgb or SsimRgb;

    /// <summary>No-reference indicators: not quality scores, labelled as such in reports.</summary>
    public static bool IsNoReference(string key) => key is GradientEnergy or NoiseSigma;

    /// <summary>One-line definitions written into the JSON ("definitions") and the Markdown report.</summary>
    public static readonly IReadOnlyDictionary<string, string> Definitions = new Dictionary<string, string>
    {
        [PsnrY] = "PSNR (dB) on the BT.601 Y channel (Y = 16 + 65.481R + 128.553G + 24.966B, BasicSR rgb2ycbcr y_only), border crop = scale; identical frames are +inf, written as null with \"identical\": true",
        [SsimY] = "SSIM on Y (11x11 Gaussian window sigma 1.5, K1 0.01, K2 0.03, valid filtering), border crop = scale",
        [PsnrRgb] = "PSNR (dB) over R, G and B, border crop = scale",
        [SsimRgb] = "SSIM averaged over R, G and B, border crop = scale",
        [FeatureDistance] = "offline perceptual distance (NOT LPIPS): unit-normalised ImageNet ResNet-18 features of 5 stages (Microsoft.ML.DnnImageFeaturizer.ResNet18), squared differences summed over channels, averaged over positions and stages with equal weights; lower is better",
        [WarpingError] = "E_warp x 1e-3: mean |O_t - warp(O_t-1)| over RGB on [0,1], flow from the ground truth (else from the result itself), occluded (forward-backward check) and out-of-frame pixels excluded; multiplied by 1000; lower is more stable",
        [WarpingErrorMse] = "the same warping error with squared differences (Lai et al. 2018 E_warp form), x 1e-3",
        [Tof] = "tOF: mean absolute difference (pixels) between the flow of the result and the flow of the ground truth, frames t-1 -> t (TecoGAN)",
        [GradientEnergy] = "no-reference indicator (not a quality score): mean squared Sobel gradient of Y on the 0..255 scale / 1000; higher = sharper or noisier",
        [NoiseSigma] = "no-reference indicator (not a quality score): Immerkaer (1996) noise standard deviation of Y on the 0..255 scale",
    };
}
