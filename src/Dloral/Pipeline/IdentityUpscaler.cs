using TorchSharp;

namespace Dloral.Pipeline;

/// <summary>Copies frames unchanged (scale 1). Used to measure the pipeline's own overhead.</summary>
public sealed class IdentityUpscaler : IUpscaler
{
    public string Name => "identity";
    public int Scale => 1;
    public int FramesBefore => 0;
    public int FramesAfter => 0;
    public torch.Tensor Upscale(FrameWindow window) => window.Current.clone();
    public void Dispose() { }
}
