using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Pipeline;

/// <summary>
/// Bicubic baseline: PyTorch's <c>interpolate(mode: bicubic, align_corners: false)</c>, i.e. Keys
/// cubic convolution with a = -0.75 and edge pixels replicated. Pillow's bicubic (what DLoRAL's
/// reference uses to pre-resize) is a = -0.5 and ffmpeg's swscale bicubic a = -0.6: see
/// docs/baselines.md for the measured gaps.
/// </summary>
public sealed class BicubicUpscaler : IUpscaler
{
    public BicubicUpscaler(int scale)
    {
        if (scale < 1) throw new ArgumentOutOfRangeException(nameof(scale), $"scale must be ≥ 1, got {scale}");
        Scale = scale;
    }

    public string Name => "bicubic";
    public int Scale { get; }
    public int FramesBefore => 0;
    public int FramesAfter => 0;

    public Tensor Upscale(FrameWindow window) => Resize(window.Current, Scale);

    /// <summary>Bicubic ×<paramref name="scale"/> of a [3,H,W] (or [N,3,H,W]) tensor, clamped to [0,1].</summary>
    public static Tensor Resize(Tensor image, int scale)
    {
        using var scope = torch.NewDisposeScope();
        bool single = image.dim() == 3;
        var x = single ? image.unsqueeze(0) : image;
        var y = scale == 1
            ? x.clone()
            : nn.functional.interpolate(x, size: new long[] { x.shape[2] * scale, x.shape[3] * scale },
                mode: InterpolationMode.Bicubic, align_corners: false);
        y = y.clamp_(0, 1);
        return (single ? y.squeeze(0) : y).MoveToOuterDisposeScope();
    }

    public void Dispose() { }
}
