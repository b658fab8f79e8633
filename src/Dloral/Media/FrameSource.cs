using System.Collections;
using System.Globalization;

namespace Dloral.Media;

/// <summary>Opens any input (video ffmpeg reads, a PNG/JPEG/WebP/BMP image, a folder of images) as an <see cref="IFrameSource"/>.</summary>
public static class FrameSource
{
    /// <summary>Probes <paramref name="path"/> and returns a lazy frame stream. Throws <see cref="MediaException"/> for bad input.</summary>
    public static IFrameSource Open(string path, FrameSourceOptions? options = null)
    {
        options ??= new FrameSourceOptions();
        if (options.Depth is int d && d is not (8 or 16))
            throw new ArgumentOutOfRangeException(nameof(options), $"Depth {d}: 8 or 16");
        if (options.MaxFrames is < 0) throw new ArgumentOutOfRangeException(nameof(options), "MaxFrames < 0");
        if (options.Start is TimeSpan s && s < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(options), "Start < 0");
        var info = MediaProbe.Probe(path, options.ImageFrameRate, options.CancellationToken);
        return Open(info, options);
    }

    /// <summary>Opens an input that was already probed.</summary>
    public static IFrameSource Open(MediaInfo info, FrameSourceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(info);
        options ??= new FrameSourceOptions();
        return info.Kind == MediaKind.ImageFolder
            ? new ImageFolderFrameSource(info, options)
            : new FfmpegFrameSource(info, options);
    }
}

/// <summary>What every source shares: options, warnings, the conversion warnings for gray and alpha input.</summary>
internal abstract class FrameSourceBase : IFrameSource
{
    private readonly List<string> _warnings = [];
    private int _enumerated;

    protected FrameSourceBase(MediaInfo info, FrameSourceOptions options)
    {
        Info = info;
        Options = options;
        Depth = options.Depth ?? (info.BitDepth > 8 ? 16 : 8);
        string name = Path.GetFileName(info.Path.TrimEnd(Path.DirectorySeparatorChar));
        if (info.IsGray)
            Warn($"{name}: grayscale input ({info.PixelFormat}): frames are converted to RGB (R = G = B)");
        if (info.HasAlpha)
            Warn($"{name}: input has an alpha channel ({info.PixelFormat}): transparency is dropped, frames are RGB");
        if (info.BitDepth > 8 && Depth == 8)
            Warn($"{name}: {info.BitDepth}-bit input read as 8-bit (Depth = 8 was asked)");
    }

    public MediaInfo Info { get; }
    public FrameSourceOptions Options { get; }
    public int Width => Info.Width;
    public int Height => Info.Height;
    public int Depth { get; }
    public abstract Rational FrameRate { get; }
    public abstract long ExpectedFrames { get; }
    public abstract TimeSpan StartOffset { get; }
    public IReadOnlyList<string> Warnings { get { lock (_warnings) return _warnings.ToArray(); } }
    public long FramesRead { get; protected set; }

    protected void Warn(string message)
    {
        lock (_warnings) _warnings.Add(message);
        Options.OnWarning?.Invoke(message);
    }

    public IEnumerator<VideoFrame> GetEnumerator()
    {
        ObjectDisposedException.ThrowIf(Disposed, this);
        // One pass only: a second enumeration would silently decode the whole input again.
        if (Interlocked.Exchange(ref _enumerated, 1) != 0)
            throw new InvalidOperationException("a frame source can be enumerated only once; open it again");
        return Produce();
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    protected abstract IEnumerator<VideoFrame> Produce();

    protected bool Disposed { get; private set; }

    public virtual void Dispose() => Disposed = true;

    protected static string PixelFormatFor(int depth) => depth == 16 ? "rgb48le" : "rgb24";

    protected static string Seconds(double s) => s.ToString("0.######", CultureInfo.InvariantCulture);
}
