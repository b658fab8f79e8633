using Dloral.Media;

namespace Dloral;

/// <summary>Settings for <see cref="Upscaler.UpscaleAsync"/>. Every property has a sensible default.</summary>
public sealed record UpscaleOptions
{
    /// <summary>Magnification: 2, 3 or 4 (1 = no resize, for measuring the pipeline itself). Default 4.</summary>
    public int Scale { get; init; } = 4;

    /// <summary>A model name from <see cref="Checkpoints.ModelCatalog"/> ("bicubic", "lanczos") or a model file path. Default "bicubic".</summary>
    public string Model { get; init; } = "bicubic";

    /// <summary>
    /// DLoRAL settings (checkpoint, prompt, stage, tiles, colour fix, dtype), used when <see cref="Model"/> is a DLoRAL
    /// model; <see cref="Scale"/> and <see cref="Device"/> here take precedence over the ones inside.
    /// </summary>
    public Pipeline.DloralVideoOptions Dloral { get; init; } = new();

    /// <summary>Video codec for video outputs. Default H.264.</summary>
    public VideoCodec Codec { get; init; } = VideoCodec.H264;

    /// <summary>Constant rate factor (H.264/H.265); null = codec default (18 for H.264).</summary>
    public int? Crf { get; init; }

    /// <summary>x264/x265 preset; null = "medium".</summary>
    public string? Preset { get; init; }

    /// <summary>Start this far into the input.</summary>
    public TimeSpan? Start { get; init; }

    /// <summary>Process at most this many frames.</summary>
    public long? MaxFrames { get; init; }

    /// <summary>Frame rate given to image-folder input (ignored for videos). Null = 25/1.</summary>
    public Rational? ImageFrameRate { get; init; }

    /// <summary>Replace an existing output. Default false: an existing output is an error.</summary>
    public bool Overwrite { get; init; }

    /// <summary>"cpu" (default) or "cuda" / "cuda:N".</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Intra-op threads for the tensor engine; null = all cores.</summary>
    public int? Threads { get; init; }

    /// <summary>Receives warnings (grayscale input converted, VFR converted to CFR, streams dropped...).</summary>
    public Action<string>? OnWarning { get; init; }
}
