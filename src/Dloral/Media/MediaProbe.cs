namespace Dloral.Media;

/// <summary>Reads what an input is (video, image, image folder) and its properties with <c>ffprobe -of json</c>.</summary>
public static class MediaProbe
{
    /// <summary>Probes a video file, a single image or a folder of images. Throws <see cref="MediaException"/> for anything unreadable.</summary>
    public static MediaInfo Probe(string path, Rational? imageFrameRate = null, CancellationToken cancellationToken = default)
        => throw new NotImplementedException();
}
