using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Pipeline;

/// <summary>
/// Lanczos (a = 3) baseline, written as two separable weight matrices (see
/// <see cref="SeparableResampler"/>); the matrices are cached per input size.
/// </summary>
public sealed class LanczosUpscaler : IUpscaler
{
    private readonly ResampleKernel _kernel = ResampleKernel.Lanczos(3);
    private (long H, long W, Device Device)? _cachedFor;
    private (Tensor Index, Tensor Weight)? _rows, _cols;

    public LanczosUpscaler(int scale)
    {
        if (scale < 1) throw new ArgumentOutOfRangeException(nameof(scale), $"scale must be ≥ 1, got {scale}");
        Scale = scale;
    }

    public string Name => "lanczos";
    public int Scale { get; }
    public int FramesBefore => 0;
    public int FramesAfter => 0;

    public Tensor Upscale(FrameWindow window)
    {
        var frame = window.Current;
        long h = frame.shape[^2], w = frame.shape[^1];
        if (_cachedFor is not { } c || c.H != h || c.W != w || c.Device != frame.device)
        {
            DisposeBands();
            _rows = SeparableResampler.Banded((int)h, (int)h * Scale, _kernel, frame.device);
            _cols = SeparableResampler.Banded((int)w, (int)w * Scale, _kernel, frame.device);
            _cachedFor = (h, w, frame.device);
        }
        using var scope = torch.NewDisposeScope();
        return SeparableResampler.Apply(frame, _rows!.Value, _cols!.Value).clamp_(0, 1).MoveToOuterDisposeScope();
    }

    /// <summary>Lanczos-3 resize of a [..., H, W] tensor to any size (antialiased when shrinking), not clamped.</summary>
    public static Tensor Resize(Tensor image, int outHeight, int outWidth)
    {
        using var scope = torch.NewDisposeScope();
        var kernel = ResampleKernel.Lanczos(3);
        var rows = SeparableResampler.Banded((int)image.shape[^2], outHeight, kernel, image.device);
        var cols = SeparableResampler.Banded((int)image.shape[^1], outWidth, kernel, image.device);
        return SeparableResampler.Apply(image, rows, cols).MoveToOuterDisposeScope();
    }

    public void Dispose() => DisposeBands();

    private void DisposeBands()
    {
        if (_rows is { } r) { r.Index.Dispose(); r.Weight.Dispose(); }
        if (_cols is { } c) { c.Index.Dispose(); c.Weight.Dispose(); }
        _rows = _cols = null;
        _cachedFor = null;
    }
}
