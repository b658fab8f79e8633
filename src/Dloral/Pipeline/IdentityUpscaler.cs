using TorchSharp;

namespace Dloral.Pipeline;

/// <summary>Passes frames through unchanged (scale 1). Used to measure the pipeline's own overhead.</summary>
public sealed class IdentityUpscaler : IUpscaler
{
    public string Name => "identity";
    public int Scale => 1;
    public int FramesBefore => 0;
    public int FramesAfter => 0;
    // A view, not a copy: a new handle the caller may dispose without touching the window's frame.
    public torch.Tensor Upscale(FrameWindow window) => window.Current.view(window.Current.shape);
    public void Dispose() { }
}
