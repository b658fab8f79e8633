using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Dloral.Pipeline;

/// <summary>How the output's colours are pulled back to the (bicubic-upscaled) input frame.</summary>
public enum ColorFixMethod
{
    /// <summary>No correction.</summary>
    None,

    /// <summary>Per-channel mean/std transfer (AdaIN); the reference default (<c>--align_method adain</c>).</summary>
    Adain,

    /// <summary>Keep the output's high frequencies, take the low frequencies (5 dilated-blur levels) from the source.</summary>
    Wavelet,
}

/// <summary>
/// The reference colour fixes (StableSR's <c>adain_color_fix</c>/<c>wavelet_color_fix</c>, as in DLoRAL's
/// my_utils/wavelet_color_fix.py) on float tensors [B,C,H,W] in [0,1].
/// </summary>
/// <remarks>
/// The reference works on PIL images and quantises with <c>ToPILImage</c> = <c>mul(255).byte()</c>, which
/// truncates. <see cref="ToU8Truncating"/> reproduces that for parity; the product path uses
/// <see cref="ToU8Rounding"/> (round to nearest), which halves the quantisation error and removes the
/// −0.5 LSB bias. The reference also feeds the colour fix the already-truncated u8 model output.
/// </remarks>
public static class ColorFix
{
    /// <summary>Applies <paramref name="method"/> and clamps to [0,1] (the reference clamps before quantising).</summary>
    public static Tensor Apply(ColorFixMethod method, Tensor target, Tensor source)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(source);
        using var scope = NewDisposeScope();
        var r = method switch
        {
            ColorFixMethod.None => target.clone(),
            ColorFixMethod.Adain => Adain(target, source),
            ColorFixMethod.Wavelet => Wavelet(target, source),
            _ => throw new ArgumentOutOfRangeException(nameof(method), method, "unknown colour fix"),
        };
        return r.clamp_(0.0, 1.0).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// AdaIN: (target − mean_t)/std_t · std_s + mean_s per image and channel, with unbiased variance + 1e-5.
    /// Not clamped.
    /// </summary>
    public static Tensor Adain(Tensor target, Tensor source)
    {
        CheckPair(target, source, sameSize: false);
        using var scope = NewDisposeScope();
        var (sMean, sStd) = MeanStd(source);
        var (tMean, tStd) = MeanStd(target);
        var normalized = (target - tMean) / tStd;
        return (normalized * sStd + sMean).MoveToOuterDisposeScope();
    }

    /// <summary>Wavelet colour fix: target's high frequencies + source's low frequencies (5 levels). Not clamped.</summary>
    public static Tensor Wavelet(Tensor target, Tensor source)
    {
        CheckPair(target, source, sameSize: true);
        using var scope = NewDisposeScope();
        var (targetHigh, _) = WaveletDecomposition(target);
        var (_, sourceLow) = WaveletDecomposition(source);
        return (targetHigh + sourceLow).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Splits an image into the sum of its high frequencies over <paramref name="levels"/> blur levels and the
    /// final low-pass (3×3 [1,2,1]²/16 kernel, dilation and replicate padding 2^i).
    /// </summary>
    public static (Tensor High, Tensor Low) WaveletDecomposition(Tensor image, int levels = 5)
    {
        using var scope = NewDisposeScope();
        var high = zeros_like(image);
        var low = image;
        var current = image;
        for (int i = 0; i < levels; i++)
        {
            long radius = 1L << i;
            low = WaveletBlur(current, radius);
            high.add_(current - low);
            current = low;
        }
        return (high.MoveToOuterDisposeScope(), low.MoveToOuterDisposeScope());
    }

    private static Tensor WaveletBlur(Tensor image, long radius)
    {
        long c = image.shape[1];
        var kernel = tensor(new float[] { 0.0625f, 0.125f, 0.0625f, 0.125f, 0.25f, 0.125f, 0.0625f, 0.125f, 0.0625f }, dtype: image.dtype, device: image.device)
            .view(1, 1, 3, 3).repeat(c, 1, 1, 1);
        var padded = F.pad(image, [radius, radius, radius, radius], PaddingModes.Replicate);
        return F.conv2d(padded, kernel, dilation: [radius, radius], groups: c);
    }

    private static (Tensor Mean, Tensor Std) MeanStd(Tensor feat, double eps = 1e-5)
    {
        long b = feat.shape[0], c = feat.shape[1];
        var flat = feat.reshape(b, c, -1);
        var std = (flat.var(2L, unbiased: true) + eps).sqrt().view(b, c, 1, 1);
        var mean = flat.mean([2L]).view(b, c, 1, 1);
        return (mean, std);
    }

    private static void CheckPair(Tensor target, Tensor source, bool sameSize)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(source);
        if (target.dim() != 4 || source.dim() != 4 || target.shape[0] != source.shape[0] || target.shape[1] != source.shape[1]
            || (sameSize && (target.shape[2] != source.shape[2] || target.shape[3] != source.shape[3])))
            throw new ArgumentException($"colour fix expects target and source [B,C,H,W]{(sameSize ? " of the same size" : "")}; got [{string.Join(",", target.shape)}] and [{string.Join(",", source.shape)}]");
    }

    /// <summary>uint8 [..,H,W,3]-style or [B,C,H,W] bytes → float in [0,1] (torchvision <c>to_tensor</c>: /255).</summary>
    public static Tensor FromU8(Tensor u8) => u8.to_type(ScalarType.Float32).div(255.0);

    /// <summary>[0,1] floats → bytes the way the reference's <c>ToPILImage</c> does: clamp, ×255, truncate.</summary>
    public static Tensor ToU8Truncating(Tensor x01)
    {
        using var scope = NewDisposeScope();
        return x01.clamp(0.0, 1.0).mul(255.0).to_type(ScalarType.Byte).MoveToOuterDisposeScope();
    }

    /// <summary>[0,1] floats → bytes rounded to nearest (the product path).</summary>
    public static Tensor ToU8Rounding(Tensor x01)
    {
        using var scope = NewDisposeScope();
        return x01.clamp(0.0, 1.0).mul(255.0).round_().to_type(ScalarType.Byte).MoveToOuterDisposeScope();
    }
}
