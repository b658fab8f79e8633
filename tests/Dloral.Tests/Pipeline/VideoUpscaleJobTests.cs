using System.Collections;
using Dloral.Media;
using Dloral.Pipeline;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Tests.Pipeline;

/// <summary>The streaming job with in-memory frames: windows, lookahead, ordering, disposal, errors, cancellation.</summary>
public class VideoUpscaleJobTests
{
    /// <summary>Frames whose every pixel holds the frame number (8-bit), so windows can be checked by value.</summary>
    private sealed class NumberedSource(int count, int width = 6, int height = 4, int failAt = -1, CancellationToken cancel = default) : IFrameSource
    {
        public MediaInfo Info { get; } = new()
        {
            Path = "/virtual/numbered.mp4", Kind = MediaKind.Video, Width = width, Height = height,
            FrameRate = new Rational(30000, 1001), FrameCount = count, DurationSeconds = count / 29.97, PixelFormat = "rgb24", BitDepth = 8,
        };
        public int Width => width;
        public int Height => height;
        public int Depth => 8;
        public Rational FrameRate => Info.FrameRate;
        public long ExpectedFrames => count;
        public TimeSpan StartOffset => TimeSpan.Zero;
        public FrameSourceOptions Options { get; } = new();
        public IReadOnlyList<string> Warnings => [];
        public long FramesRead { get; private set; }

        public IEnumerator<VideoFrame> GetEnumerator()
        {
            for (int i = 0; i < count; i++)
            {
                cancel.ThrowIfCancellationRequested();
                if (i == failAt) throw new MediaException(Info.Path, $"decoding failed at frame {i}");
                FramesRead++;
                yield return new VideoFrame(width, height, 8, Enumerable.Repeat((byte)i, width * height * 3).ToArray(), i);
            }
        }
        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
        public void Dispose() { }
    }

    private sealed class ListSink : IFrameSink
    {
        public List<VideoFrame> Frames { get; } = [];
        public bool Completed { get; private set; }
        public string OutputPath => "/virtual/out.mp4";
        public OutputKind Kind => OutputKind.Video;
        public long FramesWritten => Frames.Count;
        public IReadOnlyList<string> Warnings => [];
        public Action<VideoFrame>? OnWrite { get; init; }
        public void Write(VideoFrame frame) { OnWrite?.Invoke(frame); Frames.Add(frame); }
        public void Complete() => Completed = true;
        public void Dispose() { }
    }

    /// <summary>Records each window's frame numbers and returns the mean of the window (×2 nearest).</summary>
    private sealed class WindowRecorder(int before, int after) : IUpscaler
    {
        public List<(long Frame, int[] Numbers, bool SceneStart)> Windows { get; } = [];
        public List<Tensor> Seen { get; } = [];
        public string Name => "recorder";
        public int Scale => 2;
        public int FramesBefore => before;
        public int FramesAfter => after;

        /// <summary>Most input frames alive at once (counted on the pipeline thread, which also disposes them).</summary>
        public int MaxAliveInputs { get; private set; }

        public Tensor Upscale(FrameWindow window)
        {
            var numbers = window.Frames.Select(f => (int)Math.Round(f[0, 0, 0].item<float>() * 255)).ToArray();
            Windows.Add((window.FrameNumber, numbers, window.SceneStart));
            Seen.AddRange(window.Frames);
            MaxAliveInputs = Math.Max(MaxAliveInputs,
                Seen.Distinct(ReferenceEqualityComparer.Instance).Cast<Tensor>().Count(t => !t.IsInvalid && t.shape[1] == window.Current.shape[1]));
            var output = window.Current.repeat_interleave(2, 1).repeat_interleave(2, 2);
            Seen.Add(output);
            return output;
        }

        public void Dispose() { }
    }

    [Theory]
    [InlineData(0, 0, 5)]
    [InlineData(1, 1, 5)]
    [InlineData(2, 3, 7)]
    [InlineData(2, 2, 1)]
    [InlineData(3, 3, 2)]
    public void Every_frame_is_written_once_in_order_with_the_right_window(int before, int after, int count)
    {
        var source = new NumberedSource(count);
        var sink = new ListSink();
        var up = new WindowRecorder(before, after);
        var progress = new List<UpscaleProgress>();
        long written = new VideoUpscaleJob(up).Run(source, sink, new InlineProgress(progress.Add));

        Assert.Equal(count, written);
        Assert.True(sink.Completed);
        Assert.Equal(Enumerable.Range(0, count).Select(i => (long)i), sink.Frames.Select(f => f.Index));
        for (int i = 0; i < count; i++)
        {
            Assert.Equal(12, sink.Frames[i].Width);
            Assert.Equal(8, sink.Frames[i].Height);
            Assert.Equal((byte)i, sink.Frames[i].Data[0]);
            var (frame, numbers, sceneStart) = up.Windows[i];
            Assert.Equal(i, frame);
            var expected = Enumerable.Range(Math.Max(0, i - before), Math.Min(count - 1, i + after) - Math.Max(0, i - before) + 1).ToArray();
            Assert.Equal(expected, numbers);
            Assert.Equal(i == 0, sceneStart);
        }
        // Every tensor the upscaler saw or made was disposed by the pipeline.
        Assert.All(up.Seen, t => Assert.True(t.IsInvalid, "tensor leaked"));
        Assert.Equal(Enumerable.Range(1, count).Select(i => (long)i), progress.Select(p => p.FramesDone));
        Assert.All(progress, p => Assert.Equal(count, p.TotalFrames));
        Assert.Equal(TimeSpan.Zero, progress[^1].Eta);
    }

    [Fact]
    public void Memory_is_bounded_by_the_window_not_the_clip()
    {
        // Input tensors alive at each Upscale call: exactly the window (before + 1 + after), whatever the length.
        var source = new NumberedSource(40);
        var up = new WindowRecorder(2, 2);
        var sink = new ListSink();
        new VideoUpscaleJob(up).Run(source, sink);
        Assert.Equal(5, up.MaxAliveInputs);
        Assert.Equal(40, sink.Frames.Count);
    }

    [Fact]
    public void A_decoder_error_propagates_and_the_output_is_not_completed()
    {
        var source = new NumberedSource(10, failAt: 6);
        var sink = new ListSink();
        var e = Assert.Throws<MediaException>(() => new VideoUpscaleJob(new WindowRecorder(1, 1)).Run(source, sink));
        Assert.Contains("frame 6", e.Message);
        Assert.False(sink.Completed);
    }

    [Fact]
    public void A_writer_error_propagates()
    {
        var sink = new ListSink { OnWrite = f => { if (f.Index == 3) throw new IOException("disk full"); } };
        var e = Assert.Throws<IOException>(() => new VideoUpscaleJob(new WindowRecorder(0, 0)).Run(new NumberedSource(20), sink));
        Assert.Equal("disk full", e.Message);
        Assert.False(sink.Completed);
    }

    [Fact]
    public void An_empty_source_is_an_error_naming_the_file()
    {
        var e = Assert.Throws<MediaException>(() => new VideoUpscaleJob(new WindowRecorder(0, 0)).Run(new NumberedSource(0), new ListSink()));
        Assert.Contains("numbered.mp4", e.Message);
        Assert.Contains("no video frames", e.Message);
    }

    [Fact]
    public void Cancellation_stops_without_completing()
    {
        using var cts = new CancellationTokenSource();
        var sink = new ListSink { OnWrite = f => { if (f.Index == 2) cts.Cancel(); } };
        Assert.ThrowsAny<OperationCanceledException>(() =>
            new VideoUpscaleJob(new WindowRecorder(1, 1)).Run(new NumberedSource(50, cancel: cts.Token), sink, null, cts.Token));
        Assert.False(sink.Completed);
        Assert.True(sink.Frames.Count < 50);
    }

    [Fact]
    public void Real_upscalers_run_through_the_job()
    {
        foreach (IUpscaler up in new IUpscaler[] { new BicubicUpscaler(3), new LanczosUpscaler(2), new IdentityUpscaler() })
        {
            using (up)
            {
                var sink = new ListSink();
                new VideoUpscaleJob(up).Run(new NumberedSource(3, 5, 3), sink);
                Assert.Equal(3, sink.Frames.Count);
                Assert.All(sink.Frames, f => Assert.Equal((5 * up.Scale, 3 * up.Scale), (f.Width, f.Height)));
                // A constant frame stays constant through any interpolation.
                Assert.All(sink.Frames, f => Assert.All(f.Data, b => Assert.Equal((byte)f.Index, b)));
            }
        }
    }

    private sealed class InlineProgress(Action<UpscaleProgress> report) : IProgress<UpscaleProgress>
    {
        public void Report(UpscaleProgress value) => report(value);
    }
}
