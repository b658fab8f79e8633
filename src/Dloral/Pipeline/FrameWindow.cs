using TorchSharp;

namespace Dloral.Pipeline;

/// <summary>
/// The frames an <see cref="IUpscaler"/> sees for one output frame: the current frame and its
/// neighbours, each float32 [3,H,W] in [0,1] on the upscaler's device. At the start and end of a
/// clip the window is shorter (no padding is invented); <see cref="CurrentIndex"/> locates the current
/// frame inside <see cref="Frames"/>. The tensors belong to the pipeline: do not dispose them.
/// </summary>
public sealed class FrameWindow
{
    public FrameWindow(IReadOnlyList<torch.Tensor> frames, int currentIndex, long frameNumber, bool sceneStart)
    {
        ArgumentNullException.ThrowIfNull(frames);
        if (currentIndex < 0 || currentIndex >= frames.Count)
            throw new ArgumentOutOfRangeException(nameof(currentIndex), $"current index {currentIndex} outside a window of {frames.Count} frames");
        Frames = frames;
        CurrentIndex = currentIndex;
        FrameNumber = frameNumber;
        SceneStart = sceneStart;
    }

    /// <summary>Frames in display order, oldest first.</summary>
    public IReadOnlyList<torch.Tensor> Frames { get; }

    /// <summary>Index of the frame to upscale inside <see cref="Frames"/>.</summary>
    public int CurrentIndex { get; }

    /// <summary>Zero-based number of the current frame in the processed range.</summary>
    public long FrameNumber { get; }

    /// <summary>
    /// True when a new scene starts at the current frame, so temporal models must not carry state
    /// over from earlier frames. Always true for the first frame; scene-cut detection sets it later.
    /// </summary>
    public bool SceneStart { get; }

    /// <summary>The frame to upscale.</summary>
    public torch.Tensor Current => Frames[CurrentIndex];

    /// <summary>Number of earlier frames available in this window.</summary>
    public int Before => CurrentIndex;

    /// <summary>Number of later frames available in this window.</summary>
    public int After => Frames.Count - CurrentIndex - 1;
}
