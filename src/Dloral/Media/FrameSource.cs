namespace Dloral.Media;

/// <summary>Opens any input (video ffmpeg reads, a PNG/JPEG/WebP/BMP image, a folder of images) as an <see cref="IFrameSource"/>.</summary>
public static class FrameSource
{
    /// <summary>Probes <paramref name="path"/> and returns a lazy frame stream. Throws <see cref="MediaException"/> for bad input.</summary>
    public static IFrameSource Open(string path, FrameSourceOptions? options = null)
        => throw new NotImplementedException();
}
