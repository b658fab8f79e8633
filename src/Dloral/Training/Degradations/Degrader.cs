using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Training.Degradations;

/// <summary>
/// The Real-ESRGAN second-order degradation for video clips (DLoRAL's training degradation) plus
/// a real H.264/H.265 round trip. One <see cref="DegradationPlan"/> per clip: the same kernels,
/// resize factors/modes, noise σ and JPEG qualities for every frame; noise realisations differ per
/// frame. Seeded: the same seed gives identical bytes.
/// <code>
/// var lr = new Degrader(DegradationConfig.Dloral()).DegradeClip(hr, scale: 4, seed: 123);
/// </code>
/// </summary>
public sealed class Degrader
{
    public DegradationConfig Config { get; }

    public Degrader(DegradationConfig config)
    {
        config.Validate("<Degrader>");
        Config = config;
    }

    /// <summary>Draws a plan from <paramref name="seed"/> and degrades <paramref name="hrClip"/> [T,3,H,W] in [0,1] to [T,3,H/scale,W/scale].</summary>
    public Tensor DegradeClip(Tensor hrClip, int scale, long seed) => DegradeClip(hrClip, scale, seed, out _);

    /// <inheritdoc cref="DegradeClip(Tensor,int,long)"/>
    public Tensor DegradeClip(Tensor hrClip, int scale, long seed, out DegradationPlan plan)
    {
        plan = DegradationPlan.Sample(Config, scale, new DegradationRandom(seed));
        return Apply(hrClip, plan);
    }

    /// <summary>Applies a given plan (e.g. one plan for every chunk of a long video).</summary>
    public static Tensor Apply(Tensor hrClip, DegradationPlan plan) => Apply(hrClip, plan, new Generator(plan.NoiseSeed));

    /// <summary>Applies a plan drawing the noise from <paramref name="noise"/> (a CPU generator: the same bytes on every device).</summary>
    public static Tensor Apply(Tensor hrClip, DegradationPlan plan, Generator noise)
    {
        if (hrClip.dim() != 4 || hrClip.shape[1] != 3)
            throw new ArgumentException($"DegradeClip expects an HR clip [T,3,H,W], got [{string.Join(",", hrClip.shape)}].", nameof(hrClip));
        long h = hrClip.shape[2], w = hrClip.shape[3];
        int sf = plan.Scale;
        if (h < sf || w < sf)
            throw new ArgumentException($"HR clip {h}x{w} is smaller than the scale {sf}.", nameof(hrClip));

        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var x = hrClip.to(ScalarType.Float32);

        // ---- first degradation: blur, resize, noise, JPEG ----
        var o = Filter2D(x, plan.Kernel1);
        o = Resize(o, Math.Max(1, (long)(h * plan.Resize1.Factor)), Math.Max(1, (long)(w * plan.Resize1.Factor)), plan.Resize1.Mode);
        o = AddNoise(o, plan.Noise1, noise);
        o = JpegCompression.RoundTrip(o.clamp(0, 1), plan.JpegQuality1);

        // ---- second degradation: blur (p), resize towards 1/scale, noise ----
        if (plan.SecondOrder)
        {
            if (plan.SecondBlur) o = Filter2D(o, plan.Kernel2);
            o = Resize(o, Math.Max(1, (long)(h / (double)sf * plan.Resize2.Factor)), Math.Max(1, (long)(w / (double)sf * plan.Resize2.Factor)), plan.Resize2.Mode);
            o = AddNoise(o, plan.Noise2, noise);
        }

        // ---- final: [resize to 1/scale + sinc] and JPEG, in random order ----
        long lh = h / sf, lw = w / sf;
        if (plan.FinalResizeFirst)
        {
            o = Filter2D(Resize(o, lh, lw, plan.FinalResizeMode), plan.FinalSinc);
            o = JpegCompression.RoundTrip(o.clamp(0, 1), plan.JpegQuality2);
        }
        else
        {
            o = JpegCompression.RoundTrip(o.clamp(0, 1), plan.JpegQuality2);
            o = Filter2D(Resize(o, lh, lw, plan.FinalResizeMode), plan.FinalSinc);
        }

        o = o.mul(255).round().clamp(0, 255).div(255);
        if (plan.Video is not null) o = VideoCompression.RoundTrip(o, plan.Video);
        return o.contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Depthwise 2-D correlation with reflect padding (basicsr filter2D); replicate padding when the
    /// frame is smaller than the kernel radius. Kernels of 5 and more taps go through the FFT
    /// (same result within float32 rounding; 2.5× faster at 7 taps and 5× at 21 than libtorch's 1-channel conv).
    /// </summary>
    public static Tensor Filter2D(Tensor x, BlurKernel kernel)
    {
        if (kernel.Type == BlurKernelType.Pulse || kernel.Size == 1) return x;
        using var scope = NewDisposeScope();
        long t = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        int r = kernel.Size / 2;
        var weight = tensor(kernel.Values.Select(v => (float)v).ToArray(), [1, 1, kernel.Size, kernel.Size]).to(x.device);
        var mode = (r < h && r < w) ? PaddingModes.Reflect : PaddingModes.Replicate;
        var padded = nn.functional.pad(x.reshape(t * c, 1, h, w), [r, r, r, r], mode);
        var y = kernel.Size >= FftMinKernel ? CorrelateFft(padded, weight, h, w) : nn.functional.conv2d(padded, weight);
        return y.reshape(t, c, h, w).MoveToOuterDisposeScope();
    }

    /// <summary>Kernel size from which <see cref="Filter2D"/> uses the FFT.</summary>
    public static int FftMinKernel { get; set; } = 5;

    /// <summary>
    /// "Valid" correlation of padded [N,1,H+2r,W+2r] with a k×k kernel through a circular FFT of the
    /// padded size: the first H×W outputs of a circular correlation never wrap around.
    /// </summary>
    private static Tensor CorrelateFft(Tensor padded, Tensor weight, long h, long w)
    {
        long ph = padded.shape[2], pw = padded.shape[3], k = weight.shape[3];
        var kp = nn.functional.pad(weight, [0, pw - k, 0, ph - k]);
        var fx = torch.fft.rfft2(padded);
        var fk = torch.fft.rfft2(kp).conj().resolve_conj();
        var full = torch.fft.irfft2(fx * fk, [ph, pw]);
        return full[.., .., ..(int)h, ..(int)w];
    }

    /// <summary>Resizes [T,3,H,W] to (h, w) with "area", "bilinear" or "bicubic" (align_corners=false, no antialias, as torch's F.interpolate defaults).</summary>
    public static Tensor Resize(Tensor x, long h, long w, string mode)
    {
        if (x.shape[2] == h && x.shape[3] == w) return x;
        return mode switch
        {
            "area" => nn.functional.interpolate(x, [h, w], mode: InterpolationMode.Area),
            "bilinear" => nn.functional.interpolate(x, [h, w], mode: InterpolationMode.Bilinear, align_corners: false),
            "bicubic" => nn.functional.interpolate(x, [h, w], mode: InterpolationMode.Bicubic, align_corners: false),
            _ => throw new ArgumentException($"Unknown resize mode '{mode}' (area, bilinear, bicubic).", nameof(mode)),
        };
    }

    /// <summary>Adds the stage's Gaussian or Poisson noise (clipped to [0,1]); one realisation per frame.</summary>
    public static Tensor AddNoise(Tensor x, NoiseStep step, Generator gen)
    {
        using var scope = NewDisposeScope();
        var n = step.Gaussian ? GaussianNoise(x, step.Sigma, step.Gray, gen) : PoissonNoise(x, step.PoissonScale, step.Gray, gen);
        return x.add(n).clamp(0, 1).MoveToOuterDisposeScope();
    }

    /// <summary>σ/255 · N(0,1), drawn on the CPU generator (per pixel, per frame; one channel broadcast to RGB when gray).</summary>
    public static Tensor GaussianNoise(Tensor x, double sigma, bool gray, Generator gen)
    {
        using var scope = NewDisposeScope();
        long t = x.shape[0], h = x.shape[2], w = x.shape[3];
        var n = gray
            ? randn([t, 1, h, w], generator: gen).expand(t, 3, h, w)
            : randn([t, 3, h, w], generator: gen);
        return n.mul(sigma / 255.0).to(x.device).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Poisson (shot) noise as basicsr generate_poisson_noise_pt: the image quantised to 8 bits,
    /// vals = 2^ceil(log2(#distinct levels)) counted over the whole clip (one noise level per clip),
    /// noise = (Poisson(img·vals)/vals − img)·scale; computed on the luma when gray.
    /// </summary>
    public static Tensor PoissonNoise(Tensor x, double scale, bool gray, Generator gen)
    {
        using var scope = NewDisposeScope();
        long t = x.shape[0], h = x.shape[2], w = x.shape[3];
        var img = x.detach().cpu().to(ScalarType.Float32);
        if (gray)
        {
            img = img[.., 0..1] * 0.2989f + img[.., 1..2] * 0.587f + img[.., 2..3] * 0.114f; // torchvision rgb_to_grayscale
        }
        var levels = img.mul(255).round().clamp(0, 255);
        img = levels.div(255);
        long distinct = bincount(levels.to(ScalarType.Int64).flatten(), minlength: 256).gt(0).sum().item<long>();
        double vals = Math.Pow(2, Math.Ceiling(Math.Log2(Math.Max(1, distinct))));
        var noisy = poisson(img.mul(vals), gen).div(vals);
        var n = noisy.sub(img).mul(scale);
        if (gray) n = n.expand(t, 3, h, w);
        return n.to(x.device).MoveToOuterDisposeScope();
    }
}
