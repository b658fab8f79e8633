namespace Dloral.Media;

/// <summary>Video codec of a video output.</summary>
public enum VideoCodec
{
    /// <summary>libx264, yuv420p (yuv444p for odd sizes), 10-bit for 16-bit frames.</summary>
    H264,
    /// <summary>libx265, same pixel format rules as H.264.</summary>
    H265,
    /// <summary>FFV1 lossless, RGB planes (gbrp / gbrp16le): bit-exact frames. Best in .mkv.</summary>
    Ffv1,
}

/// <summary>How to write an output. Use <see cref="MatchSource"/> to keep the input's rate, audio and subtitles.</summary>
public sealed record FrameWriterOptions
{
    public VideoCodec Codec { get; init; } = VideoCodec.H264;

    /// <summary>Constant rate factor for H.264/H.265 (default 18 for H.264, 20 for H.265). Ignored for FFV1.</summary>
    public int? Crf { get; init; }

    /// <summary>x264/x265 preset (ultrafast ... veryslow). Default "medium".</summary>
    public string Preset { get; init; } = "medium";

    /// <summary>Exact output frame rate. Default 25/1.</summary>
    public Rational FrameRate { get; init; } = new(25, 1);

    /// <summary>Replace an existing output. Without it an existing output is an error.</summary>
    public bool Overwrite { get; init; }

    /// <summary>The input the frames come from: refused as output (also through links), and audio/subtitles are copied from it when <see cref="CopyAudio"/>/<see cref="CopySubtitles"/>.</summary>
    public string? SourcePath { get; init; }

    /// <summary>Probe of <see cref="SourcePath"/> (avoids probing twice; needed to decide copy vs re-encode).</summary>
    public MediaInfo? SourceInfo { get; init; }

    public bool CopyAudio { get; init; } = true;
    public bool CopySubtitles { get; init; } = true;

    /// <summary>Where in the source the written frames start (the reader's Start), so audio and subtitles are cut to match.</summary>
    public TimeSpan SourceStart { get; init; }

    /// <summary>Length of source taken (frames / rate) when the reader stopped early (MaxFrames); null = to the end.</summary>
    public TimeSpan? SourceDuration { get; init; }

    /// <summary>Pixel aspect ratio to tag the video with (anamorphic sources keep their display shape); null = square.</summary>
    public Rational? SampleAspectRatio { get; init; }

    /// <summary>Delay of the first frame against the source's audio (video starting after audio); kept so audio stays in sync.</summary>
    public TimeSpan VideoOffset { get; init; }

    /// <summary>Receives warnings (odd size → yuv444p, stream dropped or re-encoded...). Also kept in <see cref="IFrameSink.Warnings"/>.</summary>
    public Action<string>? OnWarning { get; init; }

    /// <summary>Cancelling aborts the writer: ffmpeg is killed and the partial output removed.</summary>
    public CancellationToken CancellationToken { get; init; }

    /// <summary>
    /// Options that keep what the reader produced: its exact frame rate, the input's audio and subtitles cut to the
    /// same start and length, and the input path guarded against being overwritten.
    /// </summary>
    public static FrameWriterOptions MatchSource(IFrameSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        bool isVideo = source.Info.Kind == MediaKind.Video;
        TimeSpan? duration = null;
        if (source.Options.MaxFrames is long max && max <= source.ExpectedFrames)
            duration = TimeSpan.FromSeconds(max / source.FrameRate.ToDouble());
        // The reader's first frame sits at max(0, videoStart - start - Start) once ffmpeg shifts the input to 0;
        // a VFR source converted to CFR already fills that gap with repeated frames.
        var info = source.Info;
        double offset = isVideo && !info.IsVariableFrameRate
            ? Math.Max(0, info.VideoStartTimeSeconds - info.StartTimeSeconds - source.StartOffset.TotalSeconds)
            : 0;
        return new FrameWriterOptions
        {
            VideoOffset = TimeSpan.FromSeconds(offset),
            SampleAspectRatio = isVideo ? info.SampleAspectRatio : null,
            FrameRate = source.FrameRate,
            SourcePath = source.Info.Path,
            SourceInfo = source.Info,
            CopyAudio = isVideo,
            CopySubtitles = isVideo,
            SourceStart = source.StartOffset,
            SourceDuration = duration,
        };
    }
}
