namespace Dloral.Media;

/// <summary>What an input is: a video (anything ffmpeg demuxes with a video stream), one still image, or a folder of images.</summary>
public enum MediaKind
{
    Video,
    Image,
    ImageFolder,
}

/// <summary>An audio stream of the input (index is ffprobe's absolute stream index).</summary>
public sealed record AudioStreamInfo(int Index, string Codec, int SampleRate, int Channels, double? DurationSeconds, string? Language);

/// <summary>A subtitle stream of the input. <see cref="IsText"/> is false for bitmap subtitles (PGS, DVD).</summary>
public sealed record SubtitleStreamInfo(int Index, string Codec, bool IsText, string? Language);

/// <summary>What <see cref="MediaProbe"/> found about an input.</summary>
public sealed record MediaInfo
{
    /// <summary>The path as given (full path).</summary>
    public required string Path { get; init; }
    public required MediaKind Kind { get; init; }

    /// <summary>Displayed width, after rotation (what the reader produces).</summary>
    public required int Width { get; init; }
    /// <summary>Displayed height, after rotation.</summary>
    public required int Height { get; init; }
    /// <summary>Stored (coded) size before rotation.</summary>
    public int CodedWidth { get; init; }
    public int CodedHeight { get; init; }

    /// <summary>
    /// The exact nominal frame rate (ffprobe r_frame_rate, or avg_frame_rate when that is the better guess).
    /// Image folders use the rate chosen in the options (25/1 by default); a single image has 1/1.
    /// </summary>
    public required Rational FrameRate { get; init; }
    /// <summary>ffprobe avg_frame_rate (frames / duration), when known.</summary>
    public Rational? AverageFrameRate { get; init; }

    /// <summary>Number of frames (see <see cref="FrameCountExact"/>).</summary>
    public required long FrameCount { get; init; }
    /// <summary>True when the count comes from the container index or counted packets; false when estimated from duration × rate.</summary>
    public bool FrameCountExact { get; init; }

    public required double DurationSeconds { get; init; }
    /// <summary>Start time of the container (seconds; usually 0).</summary>
    public double StartTimeSeconds { get; init; }
    /// <summary>Start time of the video stream (seconds); differs from the container's when audio starts first.</summary>
    public double VideoStartTimeSeconds { get; init; }

    /// <summary>ffmpeg pixel format name, e.g. "yuv420p", "yuv420p10le", "rgba", "gray".</summary>
    public required string PixelFormat { get; init; }
    /// <summary>Bits per colour component (8, 10, 12, 16).</summary>
    public required int BitDepth { get; init; }
    public bool HasAlpha { get; init; }
    public bool IsGray { get; init; }

    /// <summary>Pixel (sample) aspect ratio when not square, e.g. 8/9 for NTSC DVD; null for square pixels. Already inverted for 90°/270° rotation.</summary>
    public Rational? SampleAspectRatio { get; init; }

    /// <summary>Display rotation in degrees clockwise (0, 90, 180, 270), from the display matrix or the "rotate" tag.</summary>
    public int Rotation { get; init; }

    /// <summary>Variable frame rate: r_frame_rate and avg_frame_rate disagree, or the timestamps are irregular.</summary>
    public bool IsVariableFrameRate { get; init; }

    public string? VideoCodec { get; init; }
    /// <summary>ffprobe format_name ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "png_pipe", ...); "folder" for image folders.</summary>
    public string FormatName { get; init; } = "";
    public int VideoStreamIndex { get; init; }

    public IReadOnlyList<AudioStreamInfo> AudioStreams { get; init; } = [];
    public IReadOnlyList<SubtitleStreamInfo> SubtitleStreams { get; init; } = [];

    /// <summary>For <see cref="MediaKind.ImageFolder"/>: the image files in natural order; otherwise the single path.</summary>
    public IReadOnlyList<string> Files { get; init; } = [];

    public bool HasAudio => AudioStreams.Count > 0;
    public bool HasSubtitles => SubtitleStreams.Count > 0;
}
