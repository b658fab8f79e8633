using System.Collections.Concurrent;
using System.Globalization;
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
/// a random square crop (cropped inside ffmpeg, so only crop-sized frames cross the pipe) and one
/// dihedral transform for all frames. Decoding uses its own small ffmpeg pipe (accurate seek with
/// -ss before -i) until the media helper's FrameSource is merged. Unreadable or too short/small
/// videos are skipped with a warning.
/// </summary>
public sealed class VideoClipDataset : IClipDataset
{
    public static readonly string[] Extensions = [".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".y4m", ".ts"];

    private sealed record VideoInfo(int Width, int Height, int FrameCount, double Fps);

    private readonly VideoClipOptions _options;
    private readonly ConcurrentDictionary<string, Lazy<(VideoInfo? Info, string? Error)>> _probes = new();
    private readonly ConcurrentQueue<string> _warnings = new();
    private readonly ConcurrentDictionary<string, byte> _warned = new();

    public IReadOnlyList<string> Files { get; }
    public int Count => Files.Count;
    public IReadOnlyList<string> Warnings => _warnings.ToArray();

    public event Action<string>? Warning;

    public VideoClipDataset(string folder, VideoClipOptions? options = null)
    {
        _options = options ?? new VideoClipOptions();
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"Video clip dataset: folder '{folder}' does not exist.");
        if (_options.Frames < 1 || _options.CropSize < 8 || _options.MaxStride < 1)
            throw new ArgumentException("Video clip dataset: frames >= 1, crop size >= 8 and max stride >= 1 are required.");
        var all = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
            .OrderBy(f => f, StringComparer.Ordinal);
        Files = ValidationSplit.Select(all, _options.Split, _options.ValidationFraction);
        if (Files.Count == 0)
            throw new InvalidDataException($"Video clip dataset: no {_options.Split} videos ({string.Join(", ", Extensions)}) in '{folder}'.");
    }

    public ClipSample Get(int index, long seed)
    {
        for (int attempt = 0; attempt < Files.Count; attempt++)
        {
            int i = (index + attempt) % Files.Count;
            var sample = TryMake(i, seed, out string? error);
            if (sample is not null) return sample;
            if (!_warned.TryAdd(Files[i], 0)) continue;
            string msg = $"skipped video '{Files[i]}': {error}";
            _warnings.Enqueue(msg);
            Warning?.Invoke(msg);
        }
        throw new InvalidDataException($"Video clip dataset: none of the {Files.Count} videos could be used (see warnings).");
    }

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
            raw = DecodeRange(file, info, start, span, x, y, s);
        }
        catch (InvalidOperationException e)
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
            var args = new List<string>
            {
                "-v", "error", "-select_streams", "v:0", "-count_packets",
                "-show_entries", "stream=width,height,avg_frame_rate,r_frame_rate,nb_read_packets", "-of", "default=noprint_wrappers=1", file,
            };
            string text = System.Text.Encoding.UTF8.GetString(FfmpegProcess.Run(FfmpegProcess.FfprobePath, args, [], $"probe of '{file}'"));
            var kv = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
            if (!kv.TryGetValue("width", out var ws) || !int.TryParse(ws, out int w) || !int.TryParse(kv.GetValueOrDefault("height"), out int h))
                return (null, "no video stream");
            int n = int.TryParse(kv.GetValueOrDefault("nb_read_packets"), out int np) ? np : 0;
            double fps = ParseRate(kv.GetValueOrDefault("avg_frame_rate")) is > 0 and var a ? a : ParseRate(kv.GetValueOrDefault("r_frame_rate"));
            if (n <= 0 || fps <= 0) return (null, $"cannot tell frame count / rate (packets {n}, fps {fps})");
            return (new VideoInfo(w, h, n, fps), null);
        }
        catch (InvalidOperationException e)
        {
            return (null, e.Message);
        }
    }

    private static double ParseRate(string? r)
    {
        if (string.IsNullOrEmpty(r)) return 0;
        var p = r.Split('/');
        if (p.Length == 2 && double.TryParse(p[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double a)
            && double.TryParse(p[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double b) && b != 0)
            return a / b;
        return double.TryParse(r, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v : 0;
    }

    /// <summary>Frames [start, start+count) cropped to s×s at (x, y), as packed RGB24.</summary>
    private static byte[] DecodeRange(string file, VideoInfo info, int start, int count, int x, int y, int s)
    {
        // RGB before cropping: cropping yuv420p would snap odd offsets to the chroma grid.
        // Seek half a frame before the wanted timestamp: accurate seek then lands on frame `start`.
        double t = Math.Max(0, (start - 0.5) / info.Fps);
        var args = new List<string> { "-hide_banner", "-v", "error", "-nostdin", "-threads", "1" };
        if (start > 0) args.AddRange(["-ss", t.ToString("0.######", CultureInfo.InvariantCulture)]);
        args.AddRange(["-i", file, "-map", "0:v:0", "-vf", $"format=rgb24,crop={s}:{s}:{x}:{y}", "-frames:v", count.ToString(CultureInfo.InvariantCulture),
            "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]);
        return FfmpegProcess.Run(FfmpegProcess.FfmpegPath, args, [], $"decode of '{file}'");
    }
}
