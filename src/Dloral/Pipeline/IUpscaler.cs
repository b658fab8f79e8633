using TorchSharp;

namespace Dloral.Pipeline;

/// <summary>
/// Anything that turns a low-resolution frame into a <see cref="Scale"/>× larger one. Video models
/// look at neighbours, so the pipeline hands over a <see cref="FrameWindow"/> holding up to
/// <see cref="FramesBefore"/> earlier and <see cref="FramesAfter"/> later frames around the current one.
/// </summary>
public interface IUpscaler : IDisposable
{
    /// <summary>Short name shown to users ("bicubic", "lanczos", a model name).</summary>
    string Name { get; }

    /// <summary>Integer magnification of width and height.</summary>
    int Scale { get; }

    /// <summary>How many earlier frames the window should contain (0 for single-image methods).</summary>
    int FramesBefore { get; }

    /// <summary>How many later frames the window should contain (lookahead).</summary>
    int FramesAfter { get; }

    /// <summary>
    /// Upscales <see cref="FrameWindow.Current"/>. Returns a new float32 [3, H·Scale, W·Scale] tensor
    /// in [0,1] that the caller owns and disposes; the window's tensors stay owned by the pipeline.
    /// </summary>
    torch.Tensor Upscale(FrameWindow window);
}
