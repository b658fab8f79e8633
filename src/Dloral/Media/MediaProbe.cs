using System.Globalization;
using System.Text.Json;

namespace Dloral.Media;

/// <summary>Reads what an input is (video, image, image folder) and its properties with <c>ffprobe -of json</c>.</summary>
public static class MediaProbe
{
    /// <summary>File extensions read as images inside an image folder.</summary>
    public static IReadOnlySet<string> ImageExtensions { get; } =
        new HashSet<string>(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff" };

    /// <summary>Frame rate given to image folders when none is asked for.</summary>
    public static Rational DefaultImageFrameRate { get; } = new(25, 1);

    private static readonly HashSet<string> BitmapSubtitleCodecs = new(StringComparer.Ordinal)
    {
        "dvd_subtitle", "hdmv_pgs_subtitle", "dvb_subtitle", "xsub", "dvb_teletext", "arib_caption",
    };

    /// <summary>Probes a video file, a single image or a folder of images. Throws <see cref="MediaException"/> for anything unreadable.</summary>
    public static MediaInfo Probe(string path, Rational? imageFrameRate = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path)) return ProbeFolder(path, imageFrameRate ?? DefaultImageFrameRate, cancellationToken);
        if (!File.Exists(path)) throw new MediaException(path, "no such file or folder");
        return ProbeFile(path, imageFrameRate, cancellationToken);
    }

    /// <summary>The images of a folder in natural order (hidden files skipped).</summary>
    public static IReadOnlyList<string> ListImages(string folder) =>
        Directory.EnumerateFiles(folder)
            .Where(f => ImageExtensions.Contains(Path.GetExtension(f)) && !Path.GetFileName(f).StartsWith('.'))
            .OrderBy(f => Path.GetFileName(f), NaturalOrder.Instance)
            .ToList();

    private static MediaInfo ProbeFolder(string folder, Rational rate, CancellationToken ct)
    {
        var files = ListImages(folder);
        if (files.Count == 0)
            throw new MediaException(folder, $"folder has no images ({string.Join(", ", ImageExtensions.Order())})");
        var first = ProbeFile(files[0], rate, ct);
        if (first.Kind != MediaKind.Image)
            throw new MediaException(files[0], "is not a still image (image folders hold one picture per file)");
        return first with
        {
            Path = Path.GetFullPath(folder),
            Kind = MediaKind.ImageFolder,
            FrameRate = rate,
            AverageFrameRate = rate,
            FrameCount = files.Count,
            FrameCountExact = true,
            DurationSeconds = files.Count / rate.ToDouble(),
            FormatName = "folder",
            Files = files,
        };
    }

    private static MediaInfo ProbeFile(string path, Rational? imageFrameRate, CancellationToken ct)
    {
        var (code, stdout, stderr) = FfmpegTools.Run(FfmpegTools.Ffprobe,
            // Packet timestamps of the first 2000 packets come in the same call: they reveal variable frame rate.
            ["-v", "error", "-of", "json", "-show_format", "-show_streams", "-show_entries", "packet=stream_index,pts_time",
             "-read_intervals", "%+#2000", FfmpegTools.FileUrl(path)], ct);
        if (code != 0)
        {
            string cause = FfmpegTools.Cause(stderr, path);
            throw new MediaException(path, $"not a video ffmpeg can read ({cause})");
        }
        JsonDocument doc;
        try { doc = JsonDocument.Parse(stdout); }
        catch (JsonException ex) { throw new MediaException(path, $"ffprobe printed unreadable JSON ({ex.Message})", ex); }
        using (doc)
        {
            var root = doc.RootElement;
            var format = root.TryGetProperty("format", out var f) ? f : default;
            string formatName = Str(format, "format_name") ?? "";
            var streams = root.TryGetProperty("streams", out var s) ? s.EnumerateArray().ToList() : [];

            var video = streams.FirstOrDefault(x => Str(x, "codec_type") == "video" && !IsAttachedPicture(x));
            if (video.ValueKind != JsonValueKind.Object)
                throw new MediaException(path, streams.Count == 0
                    ? "contains no video (no streams at all: empty or unfinished file?)"
                    : "contains no video stream");

            bool isImage = formatName.EndsWith("_pipe", StringComparison.Ordinal) || formatName == "image2";
            int codedW = Int(video, "width") ?? 0, codedH = Int(video, "height") ?? 0;
            if (codedW <= 0 || codedH <= 0)
                throw new MediaException(path, "video stream has no frame size (no decodable frames?)");
            int rotation = RotationOf(video);
            bool swap = rotation is 90 or 270;
            string pixFmt = Str(video, "pix_fmt") ?? "";
            if (pixFmt.Length == 0) throw new MediaException(path, "video stream has no pixel format (no decodable frames?)");
            var desc = PixelFormats.Describe(pixFmt);
            int depth = desc.BitDepth;
            if (Int(video, "bits_per_raw_sample") is int raw && raw > depth && raw <= 16) depth = raw;

            var sar = Rational.TryParse(Str(video, "sample_aspect_ratio"));
            if (sar is Rational square && square.Numerator == square.Denominator) sar = null;
            if (sar is Rational sr && swap) sar = sr.Inverse();
            var rFrameRate = Rational.TryParse(Str(video, "r_frame_rate"));
            var avgFrameRate = Rational.TryParse(Str(video, "avg_frame_rate"));
            var rate = isImage ? imageFrameRate ?? DefaultImageFrameRate : rFrameRate ?? avgFrameRate ?? new Rational(25, 1);
            // r_frame_rate can be a field rate or a timebase artefact (e.g. 90000/1); trust avg when r is absurd.
            if (!isImage && avgFrameRate is Rational avg && rate.ToDouble() > 2.5 * avg.ToDouble() && rate.ToDouble() > 240) rate = avg;

            double start = Dbl(format, "start_time") ?? 0;
            double videoStart = Dbl(video, "start_time") ?? start;
            double duration = Dbl(format, "duration") ?? Dbl(video, "duration") ?? 0;
            int videoIndex = Int(video, "index") ?? 0;

            long frames;
            bool exact;
            if (isImage)
            {
                frames = 1;
                exact = true;
                duration = 1 / rate.ToDouble();
            }
            else
            {
                (frames, exact) = CountFrames(path, video, videoIndex, duration, rate, ct);
                if (frames == 0) throw new MediaException(path, "contains no video frames");
            }

            bool vfr = !isImage && IsVariableFrameRate(VideoPacketTimes(root, videoIndex));

            var audio = new List<AudioStreamInfo>();
            var subtitles = new List<SubtitleStreamInfo>();
            foreach (var st in streams)
            {
                string type = Str(st, "codec_type") ?? "";
                int index = Int(st, "index") ?? -1;
                string codec = Str(st, "codec_name") ?? "unknown";
                string? lang = st.TryGetProperty("tags", out var tags) ? Str(tags, "language") : null;
                if (type == "audio")
                    audio.Add(new AudioStreamInfo(index, codec, Int(st, "sample_rate") ?? 0, Int(st, "channels") ?? 0, Dbl(st, "duration"), lang));
                else if (type == "subtitle")
                    subtitles.Add(new SubtitleStreamInfo(index, codec, !BitmapSubtitleCodecs.Contains(codec), lang));
            }

            return new MediaInfo
            {
                Path = Path.GetFullPath(path),
                Kind = isImage ? MediaKind.Image : MediaKind.Video,
                Width = swap ? codedH : codedW,
                Height = swap ? codedW : codedH,
                CodedWidth = codedW,
                CodedHeight = codedH,
                FrameRate = rate,
                AverageFrameRate = isImage ? rate : avgFrameRate,
                FrameCount = frames,
                FrameCountExact = exact,
                DurationSeconds = duration,
                StartTimeSeconds = start,
                VideoStartTimeSeconds = videoStart,
                PixelFormat = pixFmt,
                BitDepth = depth,
                HasAlpha = desc.HasAlpha,
                IsGray = desc.IsGray,
                Rotation = rotation,
                SampleAspectRatio = isImage ? null : sar,
                IsVariableFrameRate = vfr,
                VideoCodec = Str(video, "codec_name"),
                FormatName = formatName,
                VideoStreamIndex = videoIndex,
                AudioStreams = audio,
                SubtitleStreams = subtitles,
                Files = [Path.GetFullPath(path)],
            };
        }
    }

    private static bool IsAttachedPicture(JsonElement stream) =>
        stream.TryGetProperty("disposition", out var d) && d.TryGetProperty("attached_pic", out var a) && a.GetInt32() != 0;

    /// <summary>Clockwise display rotation: ffprobe's display-matrix "rotation" is counter-clockwise; the old "rotate" tag is clockwise.</summary>
    private static int RotationOf(JsonElement video)
    {
        double? ccw = null;
        if (video.TryGetProperty("side_data_list", out var sdl))
            foreach (var sd in sdl.EnumerateArray())
                if (Dbl(sd, "rotation") is double r) ccw = r;
        double cw;
        if (ccw is double c) cw = -c;
        else if (video.TryGetProperty("tags", out var tags) && Dbl(tags, "rotate") is double tag) cw = tag;
        else return 0;
        int deg = (int)Math.Round(cw / 90.0) * 90;
        return ((deg % 360) + 360) % 360;
    }

    private static (long Frames, bool Exact) CountFrames(string path, JsonElement video, int index, double duration, Rational rate, CancellationToken ct)
    {
        if (Long(video, "nb_frames") is long n && n > 0) return (n, true);
        // Matroska files written by mkvmerge carry statistics tags.
        if (video.TryGetProperty("tags", out var tags))
            foreach (var p in tags.EnumerateObject())
                if (p.Name.StartsWith("NUMBER_OF_FRAMES", StringComparison.OrdinalIgnoreCase)
                    && long.TryParse(p.Value.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long tagged) && tagged > 0)
                    return (tagged, true);
        // Demux-only packet count: cheap (no decoding), exact for progressive video.
        var (code, stdout, _) = FfmpegTools.Run(FfmpegTools.Ffprobe,
            ["-v", "error", "-count_packets", "-select_streams", index.ToString(CultureInfo.InvariantCulture),
             "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", FfmpegTools.FileUrl(path)], ct);
        if (code == 0 && long.TryParse(stdout.Trim().Split('\n')[0].Trim().TrimEnd(','), NumberStyles.Integer, CultureInfo.InvariantCulture, out long counted))
            return (counted, true);
        return ((long)Math.Round(duration * rate.ToDouble()), false);
    }

    private static double[] VideoPacketTimes(JsonElement root, int videoIndex)
    {
        if (!root.TryGetProperty("packets", out var packets)) return [];
        return packets.EnumerateArray()
            .Where(p => Int(p, "stream_index") == videoIndex)
            .Select(p => Dbl(p, "pts_time"))
            .OfType<double>()
            .Order()
            .ToArray();
    }

    /// <summary>
    /// VFR when the presentation timestamps of the first packets are irregular (sorted, so B-frame reordering does
    /// not count); a difference between r_frame_rate and avg_frame_rate alone is common in CFR files and not enough.
    /// </summary>
    private static bool IsVariableFrameRate(double[] pts)
    {
        if (pts.Length < 3) return false;
        var deltas = new double[pts.Length - 1];
        for (int i = 1; i < pts.Length; i++) deltas[i - 1] = pts[i] - pts[i - 1];
        var sorted = deltas.Order().ToArray();
        double median = sorted[sorted.Length / 2];
        if (median <= 0) return false;
        // Tolerance covers millisecond-rounded container timestamps (Matroska: 33/34 ms at 29.97).
        double tolerance = 0.25 * median + 0.0015;
        return deltas.Any(d => Math.Abs(d - median) > tolerance);
    }

    private static string? Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v)
            ? v.ValueKind == JsonValueKind.String ? v.GetString() : v.ValueKind == JsonValueKind.Number ? v.GetRawText() : null
            : null;

    private static int? Int(JsonElement e, string name) =>
        Str(e, name) is string s && int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : null;

    private static long? Long(JsonElement e, string name) =>
        Str(e, name) is string s && long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) ? v : null;

    private static double? Dbl(JsonElement e, string name) =>
        Str(e, name) is string s && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v) ? v : null;
}
