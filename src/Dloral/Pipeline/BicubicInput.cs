using static TorchSharp.torch;

namespace Dloral.Pipeline;

/// <summary>
/// The upscaled input models trained here see: torch's bicubic (a = −0.75, edge replicate, align_corners false), clamped
/// to [0, 1]. One function for the trainer and the video pipeline, because a different kernel at inference than in
/// training costs PSNR. (SD-based DLoRAL keeps the reference's PIL kernel instead.)
/// </summary>
public static class BicubicInput
{
    /// <summary>Frames [n,3,h,w] in [0,1] → [n,3,<paramref name="height"/>,<paramref name="width"/>] float32 in [0,1].</summary>
    public static Tensor Upscale(Tensor frames, long height, long width)
    {
        ArgumentNullException.ThrowIfNull(frames);
        using var scope = NewDisposeScope();
        return nn.functional.interpolate(frames.to_type(ScalarType.Float32), size: [height, width], mode: InterpolationMode.Bicubic, align_corners: false)
            .clamp_(0.0, 1.0).MoveToOuterDisposeScope();
    }
}
