namespace Dloral.Media;

/// <summary>
/// A stream of decoded frames, produced lazily one at a time (memory does not grow with clip length).
/// Enumerate once; dispose to stop the decoder early. Errors are <see cref="MediaException"/>.
/// </summary>
public interface IFrameSource : IEnumerable<VideoFrame>, IDisposable
{
    /// <summary>What the probe found about the input.</summary>
    MediaInfo Info { get; }

    /// <summary>Display size of the frames produced.</summary>
    int Width { get; }
    int Height { get; }

    /// <summary>Bits per component of the frames produced (8 or 16).</summary>
    int Depth { get; }

    /// <summary>
    /// The rate the frames are produced at. Equal to <see cref="MediaInfo.FrameRate"/>, except for VFR input,
    /// which is converted to constant <see cref="MediaInfo.AverageFrameRate"/> (with a warning).
    /// </summary>
    Rational FrameRate { get; }

    /// <summary>How many frames enumeration is expected to produce (after Start/MaxFrames); for progress and ETA.</summary>
    long ExpectedFrames { get; }

    /// <summary>Time of the first frame within the input (the Start option; zero by default).</summary>
    TimeSpan StartOffset { get; }

    /// <summary>The options the source was opened with.</summary>
    FrameSourceOptions Options { get; }

    /// <summary>Warnings so far (also sent to <see cref="FrameSourceOptions.OnWarning"/>).</summary>
    IReadOnlyList<string> Warnings { get; }

    /// <summary>Frames produced so far.</summary>
    long FramesRead { get; }
}
