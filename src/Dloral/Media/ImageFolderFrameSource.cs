namespace Dloral.Media;

/// <summary>
/// A folder of images in natural order, one ffmpeg decode per image (so each file may have its own format).
/// All images must have the size of the first.
/// </summary>
internal sealed class ImageFolderFrameSource : FrameSourceBase
{
    private readonly int _skip;

    public ImageFolderFrameSource(MediaInfo info, FrameSourceOptions options) : base(info, options)
    {
        FrameRate = info.FrameRate;
        _skip = options.Start is TimeSpan s ? (int)Math.Min(info.Files.Count, Math.Round(s.TotalSeconds * FrameRate.ToDouble())) : 0;
        StartOffset = TimeSpan.FromSeconds(_skip / FrameRate.ToDouble());
        long expected = info.Files.Count - _skip;
        if (options.MaxFrames is long max) expected = Math.Min(expected, max);
        ExpectedFrames = expected;
    }

    public override Rational FrameRate { get; }
    public override long ExpectedFrames { get; }
    public override TimeSpan StartOffset { get; }

    protected override IEnumerator<VideoFrame> Produce()
    {
        var ct = Options.CancellationToken;
        long frameBytes = VideoFrame.ByteCount(Width, Height, Depth);
        double frameDuration = FrameRate.Inverse().ToDouble();
        // One image decoded ahead: each image costs an ffmpeg start-up, which then overlaps the consumer's work.
        Task<byte[]>? next = ExpectedFrames > 0 ? DecodeAsync(0, frameBytes, ct) : null;
        try
        {
            for (long index = 0; index < ExpectedFrames; index++)
            {
                ct.ThrowIfCancellationRequested();
                ObjectDisposedException.ThrowIf(Disposed, this);
                byte[] data = Await(next!);
                next = index + 1 < ExpectedFrames ? DecodeAsync(index + 1, frameBytes, ct) : null;
                FramesRead = index + 1;
                yield return new VideoFrame(Width, Height, Depth, data, index, index * frameDuration);
            }
        }
        finally
        {
            // Abandoned early: let the prefetch finish (or fail) quietly; its process is short-lived.
            if (next is not null) _ = next.ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
        }
    }

    private Task<byte[]> DecodeAsync(long index, long frameBytes, CancellationToken ct)
    {
        string file = Info.Files[(int)(index + _skip)];
        return Task.Run(() => DecodeOne(file, frameBytes, ct), CancellationToken.None);
    }

    /// <summary>Waits for a prefetched image, rethrowing its own exception (not an AggregateException).</summary>
    private static byte[] Await(Task<byte[]> task) => task.GetAwaiter().GetResult();

    private byte[] DecodeOne(string file, long frameBytes, CancellationToken ct)
    {
        var (process, stderr) = FfmpegTools.Start(FfmpegTools.Ffmpeg,
            ["-hide_banner", "-nostdin", "-v", "error", "-i", FfmpegTools.FileUrl(file), "-map", "0:v:0", "-frames:v", "1",
             "-f", "rawvideo", "-pix_fmt", PixelFormatFor(Depth), "pipe:1"],
            redirectStdin: false, redirectStdout: true);
        using (process)
        using (ct.Register(() => FfmpegTools.KillQuietly(process)))
        {
            var data = new byte[frameBytes];
            var stdout = process.StandardOutput.BaseStream;
            int total = 0;
            while (total < data.Length)
            {
                int n = stdout.Read(data, total, data.Length - total);
                if (n == 0) break;
                total += n;
            }
            // Anything left means the image is bigger than the first one.
            bool extra = total == data.Length && stdout.ReadByte() >= 0;
            FfmpegTools.KillQuietly(process);
            process.WaitForExit();
            ct.ThrowIfCancellationRequested();
            if (total == 0)
                throw new MediaException(file, $"not an image ffmpeg can read ({FfmpegTools.Cause(stderr.Text, file)})");
            if (total != data.Length || extra)
                throw new MediaException(file, $"image size differs from the folder's first image ({Width}x{Height}); all frames of a folder must have one size");
            return data;
        }
    }
}
