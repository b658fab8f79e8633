using System.Collections.Concurrent;
using Dloral.Media;
using Dloral.Training.Degradations;
using static TorchSharp.torch;

namespace Dloral.Training.ClipDatasets;

/// <summary>Options of <see cref="VideoClipDataset"/>.</summary>
public sealed class VideoClipOptions
{
    public int Frames { get; set; } = 3;
    public int CropSize { get; set; } = 256;
    /// <summary>Frame stride k drawn uniformly from [1, MaxStride]: clips of frames t, t+k, t+2k…</summary>
    public int MaxStride { get; set; } = 1;
    public bool Augment { get; set; } = true;
    public SplitPart Split { get; set; } = SplitPart.Train;
    public double ValidationFraction { get; set; } = 0.1;
}

/// <summary>
/// A folder of videos as short clips of consecutive frames (or frames t, t+k, …): a random start,
/// a random square crop and one
/// dihedral transform for all frames. Probing and decoding go through Media.MediaProbe /
/// FrameSource (accurate seek). Unreadable or too short/small videos are skipped with a warning.
/// </summary>
public sealed class VideoClipDataset : IClipDataset
{
    public static readonly string[] Extensions = [".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".y4m", ".ts"];

    private sealed record VideoInfo(MediaInfo Media, int FrameCount, double Fps)
    {
        public int Width => Media.Width;
        public int Height => Media.Height;
    }

    private readonly VideoClipOptions _options;
    private readonly ConcurrentDictionary<string, Lazy<(VideoInfo? Info, string? Error)>> _probes = new();
    private readonly DatasetFiles _files;

    public IReadOnlyList<string> Files => _files.Files;
    public int Count => Files.Count;
    public IReadOnlyList<string> Warnings => _files.Warnings;

    /// <summary>Raised for every skipped file (once per file).</summary>
    public event Action<string>? Warning
    {
        add => _files.Warning += value;
        remove => _files.Warning -= value;
    }

    public VideoClipDataset(string folder, VideoClipOptions? options = null)
    {
        _options = options ?? new VideoClipOptions();
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"Video clip dataset: folder '{folder}' does not exist.");
        if (_options.Frames < 1 || _options.CropSize < 8 || _options.MaxStride < 1)
            throw new ArgumentException("Video clip dataset: frames >= 1, crop size >= 8 and max stride >= 1 are required.");
        _files = new DatasetFiles("Video clip dataset", "video", folder, Extensions, _options.Split, _options.ValidationFraction);
    }

    public ClipSample Get(int index, long seed) =>
        _files.FirstUsable(index, i => (TryMake(i, seed, out string? error), error));

    private ClipSample? TryMake(int index, long seed, out string? error)
    {
        var o = _options;
        var rng = new DegradationRandom(seed);
        int stride = rng.Int(1, o.MaxStride);
        double fStart = rng.NextDouble(), fx = rng.NextDouble(), fy = rng.NextDouble();
        int dihedral = rng.Int(0, Dihedral.Count - 1);
        if (!o.Augment) dihedral = 0;

        string file = Files[index];
        var (info, probeError) = _probes.GetOrAdd(file, f => new Lazy<(VideoInfo?, string?)>(() => Probe(f))).Value;
        if (info is null)
        {
            error = probeError;
            return null;
        }
        int span = (o.Frames - 1) * stride + 1;
        if (info.FrameCount < span)
        {
            // a short video still gives clips at a smaller stride
            stride = Math.Max(1, (info.FrameCount - 1) / Math.Max(1, o.Frames - 1));
            span = (o.Frames - 1) * stride + 1;
            if (info.FrameCount < span)
            {
                error = $"only {info.FrameCount} frames, {o.Frames} needed";
                return null;
            }
        }
        int s = o.CropSize;
        if (info.Width < s || info.Height < s)
        {
            error = $"frames {info.Width}x{info.Height} are smaller than the {s}² crop";
            return null;
        }
        int start = Math.Min(info.FrameCount - span, (int)(fStart * (info.FrameCount - span + 1)));
        int x = Math.Min(info.Width - s, (int)(fx * (info.Width - s + 1)));
        int y = Math.Min(info.Height - s, (int)(fy * (info.Height - s + 1)));

        byte[] raw;
        try
        {
            raw = DecodeRange(info, start, span, x, y, s);
        }
        catch (MediaException e)
        {
            error = e.Message;
            return null;
        }
        long frameBytes = (long)s * s * 3;
        int got = (int)(raw.Length / frameBytes);
        if (got < span)
        {
            error = $"decoded {got} of {span} frames from frame {start}";
            return null;
        }
        using var scope = NewDisposeScope();
        var all = FrameBytes.FromRgb24(raw.AsSpan(0, (int)(frameBytes * span)).ToArray(), span, s, s);
        var idx = Enumerable.Range(0, o.Frames).Select(i => (long)i * stride).ToArray();
        var frames = all.index_select(0, tensor(idx));
        if (dihedral != 0) frames = Dihedral.Apply(frames, dihedral);
        var hr = frames.contiguous().MoveToOuterDisposeScope();
        error = null;
        return new ClipSample
        {
            Hr = hr,
            Source = file,
            Index = index,
            DihedralIndex = dihedral,
            FrameIndices = idx.Select(i => start + (int)i).ToArray(),
            CropOrigin = (x, y),
        };
    }

    private static (VideoInfo?, string?) Probe(string file)
    {
        try
        {
            var info = MediaProbe.Probe(file);
            if (info.Kind != MediaKind.Video) return (null, $"not a video ({info.Kind})");
            double fps = info.FrameRate.ToDouble();
            if (info.FrameCount <= 0 || fps <= 0) return (null, $"cannot tell frame count / rate ({info.FrameCount} frames, {fps} fps)");
            return (new VideoInfo(info, (int)Math.Min(int.MaxValue, info.FrameCount), fps), null);
        }
        catch (MediaException e)
        {
            return (null, e.Message);
        }
    }

    /// <summary>Frames [start, start+count) cropped to s×s at (x, y), as packed RGB24 (via the media FrameSource).</summary>
    private static byte[] DecodeRange(VideoInfo info, int start, int count, int x, int y, int s)
    {
        // Start half a frame early: the accurate seek then lands on frame `start` despite rounding.
        var options = new FrameSourceOptions
        {
            Start = start > 0 ? TimeSpan.FromSeconds((start - 0.5) / info.Fps) : null,
            MaxFrames = count,
            Depth = 8,
        };
        var outBytes = new List<byte[]>(count);
        using var source = FrameSource.Open(info.Media, options);
        foreach (var frame in source)
        {
            var crop = new byte[s * s * 3];
            for (int r = 0; r < s; r++)
                Array.Copy(frame.Data, ((y + r) * frame.Width + x) * 3, crop, r * s * 3, s * 3);
            outBytes.Add(crop);
            if (outBytes.Count == count) break;
        }
        return outBytes.SelectMany(b => b).ToArray();
    }
}
