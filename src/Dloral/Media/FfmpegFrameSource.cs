using System.Diagnostics;
using System.Globalization;

namespace Dloral.Media;

/// <summary>
/// A video file or a single image decoded by one ffmpeg process to raw RGB24/RGB48LE on stdout, read one frame
/// at a time: the pipe applies backpressure, so memory holds one frame whatever the clip length.
/// </summary>
internal sealed class FfmpegFrameSource : FrameSourceBase
{
    private readonly bool _toConstantRate;
    private Process? _process;

    public FfmpegFrameSource(MediaInfo info, FrameSourceOptions options) : base(info, options)
    {
        bool isVideo = info.Kind == MediaKind.Video;
        StartOffset = isVideo ? options.Start ?? TimeSpan.Zero : TimeSpan.Zero;
        _toConstantRate = isVideo && info.IsVariableFrameRate;
        FrameRate = _toConstantRate ? ConstantRateFor(info) : info.FrameRate;
        if (_toConstantRate)
            Warn($"{Path.GetFileName(info.Path)}: variable frame rate (nominal {info.FrameRate}, average {FrameRate} fps): " +
                 $"converted to constant {FrameRate} fps (frames are repeated or dropped on the constant grid, so audio stays in sync)");

        long expected;
        if (!isVideo) expected = 1;
        else if (_toConstantRate)
            expected = (long)Math.Round(Math.Max(0, info.DurationSeconds - StartOffset.TotalSeconds) * FrameRate.ToDouble());
        else
            expected = Math.Max(0, info.FrameCount - (long)Math.Round(StartOffset.TotalSeconds * FrameRate.ToDouble()));
        if (options.MaxFrames is long max) expected = Math.Min(expected, max);
        ExpectedFrames = expected;
    }

    /// <summary>
    /// The constant rate a VFR input is converted to: ffprobe's avg_frame_rate, else frames / duration (to 1/1000 fps).
    /// Never the nominal r_frame_rate, which for VFR is often a timebase-like value (1000/1) and would duplicate frames wildly.
    /// </summary>
    private static Rational ConstantRateFor(MediaInfo info)
    {
        if (info.AverageFrameRate is Rational avg && avg.ToDouble() is > 0 and < 1000) return avg;
        if (info.DurationSeconds > 0 && info.FrameCount > 0)
            return new Rational(Math.Max(1, (long)Math.Round(info.FrameCount / info.DurationSeconds * 1000)), 1000);
        return info.FrameRate;
    }

    public override Rational FrameRate { get; }
    public override long ExpectedFrames { get; }
    public override TimeSpan StartOffset { get; }

    private List<string> Arguments()
    {
        var args = new List<string> { "-hide_banner", "-nostdin", "-v", "error" };
        if (StartOffset > TimeSpan.Zero) args.AddRange(["-ss", Seconds(StartOffset.TotalSeconds)]);
        args.AddRange(["-i", FfmpegTools.FileUrl(Info.Path)]);
        args.AddRange(["-map", "0:" + Info.VideoStreamIndex.ToString(CultureInfo.InvariantCulture), "-an", "-sn", "-dn"]);
        // Passthrough: exactly the decoded frames (no duplicates at the start when video begins after audio).
        if (_toConstantRate) args.AddRange([FfmpegTools.FpsModeOption, "cfr", "-r", FrameRate.ToFractionString()]);
        else args.AddRange([FfmpegTools.FpsModeOption, "passthrough"]);
        long? limit = Info.Kind == MediaKind.Video ? Options.MaxFrames : 1;
        if (limit is long n) args.AddRange(["-frames:v", n.ToString(CultureInfo.InvariantCulture)]);
        args.AddRange(["-f", "rawvideo", "-pix_fmt", PixelFormatFor(Depth), "pipe:1"]);
        return args;
    }

    protected override IEnumerator<VideoFrame> Produce()
    {
        var ct = Options.CancellationToken;
        ct.ThrowIfCancellationRequested();
        if (Options.MaxFrames == 0) yield break;
        var (process, stderr) = FfmpegTools.Start(FfmpegTools.Ffmpeg, Arguments(), redirectStdin: false, redirectStdout: true);
        _process = process;
        using var registration = ct.Register(() => FfmpegTools.KillQuietly(process));
        try
        {
            var stdout = process.StandardOutput.BaseStream;
            FfmpegTools.EnlargePipe(stdout);
            long frameBytes = VideoFrame.ByteCount(Width, Height, Depth);
            double frameDuration = FrameRate.Inverse().ToDouble();
            long index = 0;
            while (true)
            {
                var data = new byte[frameBytes];
                int got = ReadFull(stdout, data);
                ct.ThrowIfCancellationRequested();
                if (got == 0) break;
                if (got < frameBytes)
                {
                    process.WaitForExit();
                    throw new MediaException(Info.Path,
                        $"decoding stopped inside frame {index} ({FfmpegTools.Cause(stderr.Text, Info.Path)}); the frame size may have changed mid-stream");
                }
                FramesRead = index + 1;
                yield return new VideoFrame(Width, Height, Depth, data, index, index * frameDuration);
                index++;
            }
            process.WaitForExit();
            ct.ThrowIfCancellationRequested();
            if (process.ExitCode != 0)
                throw new MediaException(Info.Path, index == 0
                    ? $"not a video ffmpeg can read ({FfmpegTools.Cause(stderr.Text, Info.Path)})"
                    : $"decoding failed after {index} frames ({FfmpegTools.Cause(stderr.Text, Info.Path)})");
            // ffmpeg exits 0 on a truncated file after decoding what it could: an exact count that falls short,
            // with errors on stderr, means damage, and silently writing a shorter output would hide it.
            string errors = stderr.Text;
            if (index > 0 && Info.FrameCountExact && !_toConstantRate && index < ExpectedFrames - (StartOffset > TimeSpan.Zero ? 1 : 0)
                && errors.Trim().Length > 0)
                throw new MediaException(Info.Path,
                    $"decoding stopped after {index} of {ExpectedFrames} frames ({FfmpegTools.Cause(errors, Info.Path)}): the file looks truncated or damaged");
            if (index == 0)
                throw new MediaException(Info.Path, StartOffset > TimeSpan.Zero
                    ? $"no video frames after the start time {StartOffset} (the input lasts {Info.DurationSeconds:0.###} s)"
                    : "contains no decodable video frames");
        }
        finally
        {
            FfmpegTools.KillQuietly(process);
            process.Dispose();
            _process = null;
        }
    }

    private static int ReadFull(Stream stream, byte[] buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = stream.Read(buffer, total, buffer.Length - total);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    public override void Dispose()
    {
        if (_process is { } p) FfmpegTools.KillQuietly(p);
        base.Dispose();
    }
}
