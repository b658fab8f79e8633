using System.Diagnostics;
using System.Globalization;

namespace Dloral.Media;

/// <summary>
/// Streams raw RGB frames into ffmpeg's stdin. Writes to a temporary file (or folder) beside the destination and
/// renames it at <see cref="Complete"/>; removes it on failure, cancellation or Dispose without Complete.
/// </summary>
public sealed class FrameWriter : IFrameSink
{
    private readonly FrameWriterOptions _options;
    private readonly string _dest;
    private readonly string _temp;
    private readonly List<string> _warnings = [];
    private readonly CancellationTokenRegistration _cancelRegistration;
    private Process? _process;
    private StderrTail? _stderr;
    private Stream? _stdin;
    private int _width, _height, _depth;
    private bool _completed, _disposed, _failed;

    private FrameWriter(string outputPath, OutputKind kind, string dest, string temp, FrameWriterOptions options)
    {
        OutputPath = outputPath;
        Kind = kind;
        _dest = dest;
        _temp = temp;
        _options = options;
        _cancelRegistration = options.CancellationToken.Register(() => { if (_process is { } p) FfmpegTools.KillQuietly(p); });
        if (kind != OutputKind.Video && options.SourceInfo is { Kind: MediaKind.Video } src
            && ((options.CopyAudio && src.HasAudio) || (options.CopySubtitles && src.HasSubtitles)))
            Warn($"{Path.GetFileName(outputPath.TrimEnd(Path.DirectorySeparatorChar))}: " +
                 $"{(kind == OutputKind.Image ? "an image" : "a folder of PNG frames")} holds no audio or subtitles: the input's are not kept");
    }

    /// <summary>
    /// Validates the destination (see <see cref="OutputFile.Validate"/>) and creates the temporary output beside it
    /// (so an unwritable folder fails here, before any work). ffmpeg starts at the first frame, whose size and depth fix the output's.
    /// </summary>
    public static FrameWriter Open(string outputPath, FrameWriterOptions? options = null)
    {
        options ??= new FrameWriterOptions();
        options.CancellationToken.ThrowIfCancellationRequested();
        var kind = OutputFile.KindOf(outputPath);
        if (kind == OutputKind.Video && options.Codec == VideoCodec.Ffv1 && Path.GetExtension(outputPath).Equals(".mp4", StringComparison.OrdinalIgnoreCase))
            throw new MediaException(outputPath, "FFV1 cannot be stored in .mp4: use .mkv or .mov");
        if (options.Crf is int crf && crf is < 0 or > 51) throw new MediaException(outputPath, $"CRF {crf} is out of range (0..51)");
        if (options.FrameRate.Numerator <= 0) throw new MediaException(outputPath, $"frame rate {options.FrameRate} must be positive");
        OutputFile.Validate(outputPath, options.SourcePath, options.Overwrite);

        string dest = Path.GetFullPath(outputPath).TrimEnd(Path.DirectorySeparatorChar);
        string dir = Path.GetDirectoryName(dest) ?? "/";
        try
        {
            Directory.CreateDirectory(dir);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new MediaException(outputPath, $"cannot create the output folder {dir} ({Reason(ex)})", ex);
        }
        // '%' would be read as an image2 sequence pattern by ffmpeg.
        string stem = Path.GetFileName(dest).Replace('%', '_');
        string tag = Guid.NewGuid().ToString("N")[..8];
        string temp = kind == OutputKind.ImageFolder
            ? Path.Combine(dir, $".{stem}.dloral-{tag}.part")
            : Path.Combine(dir, $".{Path.GetFileNameWithoutExtension(stem)}.dloral-{tag}.part{Path.GetExtension(stem)}");
        try
        {
            if (kind == OutputKind.ImageFolder) Directory.CreateDirectory(temp);
            else File.Create(temp).Dispose();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new MediaException(outputPath, $"cannot write in folder {dir} ({Reason(ex)})", ex);
        }

        if (options.SourceInfo is null && options.SourcePath is not null && kind == OutputKind.Video && (options.CopyAudio || options.CopySubtitles))
        {
            try
            {
                options = options with { SourceInfo = MediaProbe.Probe(options.SourcePath, null, options.CancellationToken) };
            }
            catch
            {
                DeleteQuietly(temp, kind);
                throw;
            }
        }
        return new FrameWriter(outputPath, kind, dest, temp, options);
    }

    /// <summary>The output path as given.</summary>
    public string OutputPath { get; }
    public OutputKind Kind { get; }
    public long FramesWritten { get; private set; }
    public IReadOnlyList<string> Warnings => _warnings.ToArray();

    /// <summary>The temporary path frames go to until <see cref="Complete"/> (for tests and diagnostics).</summary>
    public string TemporaryPath => _temp;

    public void Write(VideoFrame frame)
    {
        ArgumentNullException.ThrowIfNull(frame);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_completed) throw new InvalidOperationException("the writer is already complete");
        if (_failed) throw new InvalidOperationException("the writer failed earlier; dispose it");
        var ct = _options.CancellationToken;
        ct.ThrowIfCancellationRequested();
        if (_process is null)
        {
            _width = frame.Width;
            _height = frame.Height;
            _depth = frame.Depth;
            Start();
        }
        else if (frame.Width != _width || frame.Height != _height || frame.Depth != _depth)
        {
            Fail();
            throw new MediaException(OutputPath,
                $"frame {frame.Index} is {frame.Width}x{frame.Height} {frame.Depth}-bit, the output was started at {_width}x{_height} {_depth}-bit");
        }
        if (Kind == OutputKind.Image && FramesWritten >= 1)
        {
            Fail();
            throw new MediaException(OutputPath, "a single image output takes one frame; write to a folder or a video for more frames");
        }
        try
        {
            _stdin!.Write(frame.Data, 0, frame.Data.Length);
        }
        catch (IOException ex)
        {
            Fail();
            ct.ThrowIfCancellationRequested();
            _process!.WaitForExit();
            throw new MediaException(OutputPath, $"ffmpeg stopped encoding it ({FfmpegTools.Cause(_stderr!.Text, _temp)})", ex);
        }
        FramesWritten++;
    }

    public void Complete()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_completed) return;
        if (_failed) throw new InvalidOperationException("the writer failed earlier; dispose it");
        var ct = _options.CancellationToken;
        try
        {
            ct.ThrowIfCancellationRequested();
            if (_process is null || FramesWritten == 0)
                throw new MediaException(OutputPath, "no frames were written: nothing to save");
            try { _stdin!.Dispose(); }
            catch (IOException) { /* ffmpeg already exited: its exit code and stderr say why */ }
            _process.WaitForExit();
            ct.ThrowIfCancellationRequested();
            if (_process.ExitCode != 0)
                throw new MediaException(OutputPath, $"ffmpeg could not encode it ({FfmpegTools.Cause(_stderr!.Text, _temp)})");
            MoveIntoPlace();
            _completed = true;
        }
        catch
        {
            Fail();
            throw;
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _cancelRegistration.Dispose();
        if (!_completed) Fail();
        _process?.Dispose();
    }

    private void Start()
    {
        var args = new List<string> { "-hide_banner", "-nostdin", "-v", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", _depth == 16 ? "rgb48le" : "rgb24",
            "-s", $"{_width}x{_height}", "-framerate", _options.FrameRate.ToFractionString() };
        if (Kind == OutputKind.Video && _options.VideoOffset > TimeSpan.Zero)
            args.AddRange(["-itsoffset", Seconds(_options.VideoOffset.TotalSeconds)]);
        args.AddRange(["-i", "pipe:0"]);
        switch (Kind)
        {
            case OutputKind.Video:
                AddVideoArguments(args);
                break;
            case OutputKind.ImageFolder:
                args.AddRange(["-map", "0:v:0", "-pix_fmt", _depth == 16 ? "rgb48be" : "rgb24",
                    "-start_number", "1", "-f", "image2", FfmpegTools.FileUrl(Path.Combine(_temp.Replace("%", "%%", StringComparison.Ordinal), "frame_%06d.png"))]);
                break;
            case OutputKind.Image:
                bool jpeg = !Path.GetExtension(_dest).Equals(".png", StringComparison.OrdinalIgnoreCase);
                args.AddRange(["-map", "0:v:0", "-frames:v", "1", "-update", "1"]);
                if (jpeg) args.AddRange(["-c:v", "mjpeg", "-q:v", "2", "-pix_fmt", "yuvj444p"]);
                else args.AddRange(["-c:v", "png", "-pix_fmt", _depth == 16 ? "rgb48be" : "rgb24"]);
                args.AddRange(["-f", "image2", FfmpegTools.FileUrl(_temp)]);
                break;
        }
        (_process, _stderr) = FfmpegTools.Start(FfmpegTools.Ffmpeg, args, redirectStdin: true, redirectStdout: false);
        _stdin = _process.StandardInput.BaseStream;
        FfmpegTools.EnlargePipe(_stdin);
    }

    private void AddVideoArguments(List<string> args)
    {
        string ext = Path.GetExtension(_dest).ToLowerInvariant();
        var source = _options.SourceInfo;
        var copies = StreamCopyPlan.For(ext, source, _options.CopyAudio, _options.CopySubtitles, Warn);
        if (copies.Count > 0)
        {
            if (_options.SourceStart > TimeSpan.Zero) args.AddRange(["-ss", Seconds(_options.SourceStart.TotalSeconds)]);
            if (_options.SourceDuration is TimeSpan d) args.AddRange(["-t", Seconds(d.TotalSeconds)]);
            args.AddRange(["-i", FfmpegTools.FileUrl(source!.Path)]);
        }
        args.AddRange(["-map", "0:v:0"]);
        foreach (var c in copies) args.AddRange(["-map", "1:" + c.StreamIndex.ToString(CultureInfo.InvariantCulture)]);
        if (copies.Count > 0) args.AddRange(["-map_metadata", "1", "-map_chapters", "1"]);

        bool odd = _width % 2 != 0 || _height % 2 != 0;
        switch (_options.Codec)
        {
            case VideoCodec.H264:
            case VideoCodec.H265:
                string pixFmt = (odd ? "yuv444p" : "yuv420p") + (_depth == 16 ? "10le" : "");
                if (odd)
                    Warn($"{Path.GetFileName(OutputPath)}: {_width}x{_height} has an odd side and 4:2:0 chroma needs even sizes: " +
                         $"encoded as 4:4:4 ({pixFmt}) to keep every pixel; some browsers and hardware players cannot play 4:4:4");
                bool h264 = _options.Codec == VideoCodec.H264;
                int crf = _options.Crf ?? (h264 ? 18 : 20);
                args.AddRange(["-c:v", h264 ? "libx264" : "libx265", "-preset", _options.Preset,
                    "-crf", crf.ToString(CultureInfo.InvariantCulture), "-pix_fmt", pixFmt]);
                if (!h264)
                {
                    args.AddRange(["-x265-params", "log-level=error"]);
                    if (ext is ".mp4" or ".mov") args.AddRange(["-tag:v", "hvc1"]);
                }
                // RGB → YUV with BT.709 and tagged as such, so players and our reader convert back with the same matrix.
                args.AddRange(["-vf", "scale=out_color_matrix=bt709:out_range=tv" + SetSar(),
                    "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv"]);
                break;
            case VideoCodec.Ffv1:
                args.AddRange(["-c:v", "ffv1", "-level", "3", "-g", "1", "-pix_fmt", _depth == 16 ? "gbrp16le" : "gbrp"]);
                if (_options.SampleAspectRatio is not null) args.AddRange(["-vf", SetSar()[1..]]);
                break;
        }
        for (int k = 0; k < copies.Count; k++)
        {
            var c = copies[k];
            string spec = (c.IsAudio ? "a" : "s") + ":" + copies.Take(k).Count(x => x.IsAudio == c.IsAudio).ToString(CultureInfo.InvariantCulture);
            args.AddRange([$"-c:{spec}", c.Codec]);
            if (c.Codec == "aac") args.AddRange([$"-b:{spec}", "192k"]);
        }
        // Stream copy after an input seek starts at the keyframe before it, with negative timestamps; an output
        // seek to 0 drops those packets so the copied audio starts with the first frame (MP4 and Matroska alike).
        if (copies.Count > 0 && _options.SourceStart > TimeSpan.Zero) args.AddRange(["-ss", "0"]);
        string format = ext switch { ".mp4" => "mp4", ".mov" => "mov", _ => "matroska" };
        if (format is "mp4" or "mov") args.AddRange(["-movflags", "+faststart"]);
        args.AddRange(["-f", format, FfmpegTools.FileUrl(_temp)]);
    }

    /// <summary>",setsar=8/9" for anamorphic sources (upscaling keeps the pixel shape), else empty.</summary>
    private string SetSar() =>
        _options.SampleAspectRatio is Rational sar ? ",setsar=" + sar.ToFractionString() : "";

    private void MoveIntoPlace()
    {
        try
        {
            if (Kind == OutputKind.ImageFolder)
            {
                if (Directory.Exists(_dest))
                {
                    if (!Directory.EnumerateFileSystemEntries(_dest).Any()) Directory.Delete(_dest);
                    else
                    {
                        if (!_options.Overwrite) throw new MediaException(OutputPath, "appeared while writing (use --overwrite to replace it)");
                        // Swap in the new folder first, then delete the old one: never a moment with neither.
                        string trash = _temp + ".old";
                        Directory.Move(_dest, trash);
                        Directory.Move(_temp, _dest);
                        Directory.Delete(trash, recursive: true);
                        return;
                    }
                }
                Directory.Move(_temp, _dest);
            }
            else
            {
                File.Move(_temp, _dest, overwrite: _options.Overwrite);
            }
        }
        catch (IOException ex)
        {
            throw new MediaException(OutputPath, File.Exists(_dest) || Directory.Exists(_dest)
                ? "appeared while writing (use --overwrite to replace it)"
                : $"cannot move the finished output into place ({ex.Message})", ex);
        }
    }

    /// <summary>Stops ffmpeg and removes the temporary output: nothing partial is left behind.</summary>
    private void Fail()
    {
        _failed = true;
        if (_process is { } p)
        {
            FfmpegTools.KillQuietly(p);
            try { p.WaitForExit(); } catch (InvalidOperationException) { }
        }
        try { _stdin?.Dispose(); } catch (IOException) { }
        DeleteQuietly(_temp, Kind);
    }

    private static void DeleteQuietly(string temp, OutputKind kind)
    {
        try
        {
            if (kind == OutputKind.ImageFolder) { if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true); }
            else if (File.Exists(temp)) File.Delete(temp);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private void Warn(string message)
    {
        _warnings.Add(message);
        _options.OnWarning?.Invoke(message);
    }

    private static string Reason(Exception ex) => ex is UnauthorizedAccessException ? "permission denied" : ex.Message;

    private static string Seconds(double s) => s.ToString("0.######", CultureInfo.InvariantCulture);
}
