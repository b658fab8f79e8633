namespace Dloral.Media;

/// <summary>How to read an input (all optional).</summary>
public sealed record FrameSourceOptions
{
    /// <summary>Skip to this time before the first frame (accurate seek: decodes from the previous keyframe). Image folders: start at round(Start × rate).</summary>
    public TimeSpan? Start { get; init; }

    /// <summary>Read at most this many frames.</summary>
    public long? MaxFrames { get; init; }

    /// <summary>Force 8 (RGB24) or 16 (RGB48LE) bits per component; null picks 16 when the input has more than 8 bits, else 8.</summary>
    public int? Depth { get; init; }

    /// <summary>Frame rate given to image folders (and single images). Default 25/1.</summary>
    public Rational? ImageFrameRate { get; init; }

    /// <summary>Receives warnings (grayscale/alpha converted, VFR converted to CFR...). They are also kept in <see cref="IFrameSource.Warnings"/>.</summary>
    public Action<string>? OnWarning { get; init; }

    /// <summary>Stops reading (the ffmpeg process is killed, enumeration throws <see cref="OperationCanceledException"/>).</summary>
    public CancellationToken CancellationToken { get; init; }
}
