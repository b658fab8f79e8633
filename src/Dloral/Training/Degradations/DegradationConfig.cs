using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dloral.Training.Degradations;

/// <summary>
/// Parameters of the Real-ESRGAN second-order degradation (+ a video-codec step), named like the
/// keys of the reference's <c>params.yml</c> (snake_case in JSON). Loaded with <see cref="Load"/>
/// from <c>configs/degradations/*.json</c> or built from the presets <see cref="Dloral"/> and
/// <see cref="Light"/>.
/// </summary>
public sealed class DegradationConfig
{
    // ---- first degradation ----
    /// <summary>Probabilities of resizing up / down / keep.</summary>
    public double[] ResizeProb { get; set; } = [0.2, 0.7, 0.1];
    public double[] ResizeRange { get; set; } = [0.3, 1.5];
    public double GaussianNoiseProb { get; set; } = 0.5;
    /// <summary>Gaussian noise σ range, in 0–255 units.</summary>
    public double[] NoiseRange { get; set; } = [1, 15];
    public double[] PoissonScaleRange { get; set; } = [0.05, 3.0];
    public double GrayNoiseProb { get; set; } = 0.4;
    public double[] JpegRange { get; set; } = [60, 95];

    // ---- second degradation ----
    /// <summary>Probability that the second stage runs at all (1 in Real-ESRGAN / OSEDiff).</summary>
    public double SecondOrderProb { get; set; } = 1.0;
    public double SecondBlurProb { get; set; } = 0.8;
    public double[] ResizeProb2 { get; set; } = [0.3, 0.4, 0.3];
    public double[] ResizeRange2 { get; set; } = [0.3, 1.2];
    public double GaussianNoiseProb2 { get; set; } = 0.5;
    public double[] NoiseRange2 { get; set; } = [1, 25];
    public double[] PoissonScaleRange2 { get; set; } = [0.05, 2.5];
    public double GrayNoiseProb2 { get; set; } = 0.4;
    public double[] JpegRange2 { get; set; } = [60, 95];

    /// <summary>Resize modes drawn uniformly for every resize (area / bilinear / bicubic).</summary>
    public string[] ResizeModes { get; set; } = ["area", "bilinear", "bicubic"];

    /// <summary>Probability of "[resize back + sinc] then JPEG" (else "JPEG then [resize back + sinc]").</summary>
    public double FinalResizeFirstProb { get; set; } = 0.5;

    public KernelInfo KernelInfo { get; set; } = new();

    /// <summary>Real video-codec artifacts on the final LR clip (absent in the reference).</summary>
    public VideoCompressionConfig VideoCompression { get; set; } = new();

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        WriteIndented = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>The reference's params.yml values (see configs/degradations/dloral.json for provenance).</summary>
    public static DegradationConfig Dloral() => new();

    /// <summary>A mild preset: small blur, little noise, high JPEG quality, light H.264.</summary>
    public static DegradationConfig Light() => new()
    {
        ResizeProb = [0.2, 0.6, 0.2],
        ResizeRange = [0.5, 1.2],
        NoiseRange = [1, 5],
        PoissonScaleRange = [0.05, 0.5],
        GrayNoiseProb = 0.4,
        JpegRange = [80, 95],
        SecondOrderProb = 0.5,
        SecondBlurProb = 0.3,
        ResizeProb2 = [0.2, 0.4, 0.4],
        ResizeRange2 = [0.7, 1.2],
        NoiseRange2 = [1, 3],
        PoissonScaleRange2 = [0.05, 0.3],
        JpegRange2 = [80, 95],
        KernelInfo = new KernelInfo
        {
            BlurSigma = [0.2, 1.2],
            BlurSigma2 = [0.2, 0.8],
            SincProb = 0.05,
            SincProb2 = 0.05,
            FinalSincProb = 0.3,
        },
        VideoCompression = new VideoCompressionConfig { Prob = 0.5, CrfRange = [18, 26] },
    };

    /// <summary>A preset by name: "dloral" or "light", or a path to a JSON file.</summary>
    public static DegradationConfig FromPreset(string nameOrPath) => nameOrPath.ToLowerInvariant() switch
    {
        "dloral" or "default" => Dloral(),
        "light" => Light(),
        _ when File.Exists(nameOrPath) => Load(nameOrPath),
        // A path that is not there is a missing file (a config's relative path resolves from the config's folder), not a bad name.
        _ when LooksLikePath(nameOrPath) => throw new FileNotFoundException($"degradation config '{nameOrPath}' not found (a preset name 'dloral' or 'light', or a JSON file)", nameOrPath),
        _ => throw new ArgumentException($"Unknown degradation preset '{nameOrPath}': use 'dloral', 'light' or a JSON file path."),
    };

    private static bool LooksLikePath(string s) =>
        s.Contains('/') || s.Contains(Path.DirectorySeparatorChar) || s.EndsWith(".json", StringComparison.OrdinalIgnoreCase);

    /// <summary>Reads a JSON config (snake_case keys, comments allowed) and validates it.</summary>
    public static DegradationConfig Load(string path)
    {
        DegradationConfig? cfg;
        try
        {
            cfg = JsonSerializer.Deserialize<DegradationConfig>(File.ReadAllText(path), JsonOptions);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Degradation config '{path}': {e.Message}", e);
        }
        if (cfg is null) throw new InvalidDataException($"Degradation config '{path}' is empty.");
        cfg.Validate(path);
        return cfg;
    }

    public static DegradationConfig Parse(string json)
    {
        var cfg = JsonSerializer.Deserialize<DegradationConfig>(json, JsonOptions)
                  ?? throw new InvalidDataException("Degradation config JSON is empty.");
        cfg.Validate("<json>");
        return cfg;
    }

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Throws with the offending key when a range or probability list is malformed.</summary>
    public void Validate(string source)
    {
        void Range(double[] r, string key, double min, double max)
        {
            if (r.Length != 2 || r[0] > r[1] || r[0] < min || r[1] > max)
                throw new InvalidDataException($"Degradation config '{source}': {key} must be [lo, hi] with {min} <= lo <= hi <= {max}, got [{string.Join(", ", r)}].");
        }
        void Probs(double[] p, int n, string key)
        {
            if (p.Length != n || p.Any(v => v < 0) || p.Sum() <= 0)
                throw new InvalidDataException($"Degradation config '{source}': {key} must be {n} non-negative weights, got [{string.Join(", ", p)}].");
        }
        void Prob(double p, string key)
        {
            if (p is < 0 or > 1) throw new InvalidDataException($"Degradation config '{source}': {key} must be in [0, 1], got {p}.");
        }
        Probs(ResizeProb, 3, "resize_prob");
        Probs(ResizeProb2, 3, "resize_prob2");
        Range(ResizeRange, "resize_range", 0.01, 10);
        Range(ResizeRange2, "resize_range2", 0.01, 10);
        Range(NoiseRange, "noise_range", 0, 255);
        Range(NoiseRange2, "noise_range2", 0, 255);
        Range(PoissonScaleRange, "poisson_scale_range", 0, 100);
        Range(PoissonScaleRange2, "poisson_scale_range2", 0, 100);
        Range(JpegRange, "jpeg_range", 1, 100);
        Range(JpegRange2, "jpeg_range2", 1, 100);
        foreach (var (p, k) in new[] { (GaussianNoiseProb, "gaussian_noise_prob"), (GaussianNoiseProb2, "gaussian_noise_prob2"),
                     (GrayNoiseProb, "gray_noise_prob"), (GrayNoiseProb2, "gray_noise_prob2"), (SecondOrderProb, "second_order_prob"),
                     (SecondBlurProb, "second_blur_prob"), (FinalResizeFirstProb, "final_resize_first_prob") })
            Prob(p, k);
        if (ResizeModes.Length == 0 || ResizeModes.Any(m => m is not ("area" or "bilinear" or "bicubic")))
            throw new InvalidDataException($"Degradation config '{source}': resize_modes must be a non-empty subset of area, bilinear, bicubic.");
        KernelInfo.Validate(source);
        VideoCompression.Validate(source);
    }
}

/// <summary>Blur-kernel settings of both stages and the final sinc filter (params.yml "kernel_info").</summary>
public sealed class KernelInfo
{
    /// <summary>Kernel sizes are odd, drawn uniformly from [min, max] (7–21 in the reference).</summary>
    public int[] KernelSizeRange { get; set; } = [7, 21];

    public string[] KernelList { get; set; } = ["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"];
    public double[] KernelProb { get; set; } = [0.45, 0.25, 0.12, 0.03, 0.12, 0.03];
    public double SincProb { get; set; } = 0.1;
    public double[] BlurSigma { get; set; } = [0.2, 3.0];
    public double[] BetagRange { get; set; } = [0.5, 4.0];
    public double[] BetapRange { get; set; } = [1.0, 2.0];

    public string[] KernelList2 { get; set; } = ["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"];
    public double[] KernelProb2 { get; set; } = [0.45, 0.25, 0.12, 0.03, 0.12, 0.03];
    public double SincProb2 { get; set; } = 0.1;
    public double[] BlurSigma2 { get; set; } = [0.2, 1.5];
    public double[] BetagRange2 { get; set; } = [0.5, 4.0];
    public double[] BetapRange2 { get; set; } = [1.0, 2.0];

    public double FinalSincProb { get; set; } = 0.8;

    internal void Validate(string source)
    {
        if (KernelSizeRange.Length != 2 || KernelSizeRange[0] % 2 == 0 || KernelSizeRange[1] % 2 == 0
            || KernelSizeRange[0] < 1 || KernelSizeRange[0] > KernelSizeRange[1])
            throw new InvalidDataException($"Degradation config '{source}': kernel_info.kernel_size_range must be two odd sizes lo <= hi, got [{string.Join(", ", KernelSizeRange)}].");
        foreach (var (list, probs, key) in new[] { (KernelList, KernelProb, "kernel_list"), (KernelList2, KernelProb2, "kernel_list2") })
        {
            if (list.Length == 0 || list.Length != probs.Length || probs.Any(p => p < 0) || probs.Sum() <= 0)
                throw new InvalidDataException($"Degradation config '{source}': kernel_info.{key} and its probabilities must be non-empty and of equal length.");
            foreach (var k in list)
                _ = BlurKernels.ParseType(k, source);
        }
        foreach (var (r, key) in new[] { (BlurSigma, "blur_sigma"), (BlurSigma2, "blur_sigma2"), (BetagRange, "betag_range"),
                     (BetagRange2, "betag_range2"), (BetapRange, "betap_range"), (BetapRange2, "betap_range2") })
            if (r.Length != 2 || r[0] <= 0 || r[0] > r[1])
                throw new InvalidDataException($"Degradation config '{source}': kernel_info.{key} must be [lo, hi] with 0 < lo <= hi.");
    }
}

/// <summary>H.264 / H.265 round trip of the whole LR clip through ffmpeg.</summary>
public sealed class VideoCompressionConfig
{
    /// <summary>Probability that a clip is compressed; 0 disables the step.</summary>
    public double Prob { get; set; } = 0.5;
    /// <summary>ffmpeg encoders ("libx264", "libx265") and their probabilities.</summary>
    public string[] Codecs { get; set; } = ["libx264", "libx265"];
    public double[] CodecProb { get; set; } = [0.7, 0.3];
    /// <summary>Constant rate factor range (integers, inclusive).</summary>
    public int[] CrfRange { get; set; } = [18, 35];
    /// <summary>x264/x265 presets drawn uniformly (they change the artifact character).</summary>
    public string[] Presets { get; set; } = ["veryfast", "medium"];

    internal void Validate(string source)
    {
        if (Prob is < 0 or > 1)
            throw new InvalidDataException($"Degradation config '{source}': video_compression.prob must be in [0, 1].");
        if (Codecs.Length == 0 || Codecs.Length != CodecProb.Length || CodecProb.Any(p => p < 0) || CodecProb.Sum() <= 0
            || Codecs.Any(c => c is not ("libx264" or "libx265")))
            throw new InvalidDataException($"Degradation config '{source}': video_compression.codecs must be libx264/libx265 with one probability each.");
        if (CrfRange.Length != 2 || CrfRange[0] < 0 || CrfRange[1] > 51 || CrfRange[0] > CrfRange[1])
            throw new InvalidDataException($"Degradation config '{source}': video_compression.crf_range must be [lo, hi] within 0–51.");
        if (Presets.Length == 0)
            throw new InvalidDataException($"Degradation config '{source}': video_compression.presets must not be empty.");
    }
}
