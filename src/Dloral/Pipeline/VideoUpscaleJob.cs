using System.Collections.Concurrent;
using System.Diagnostics;
using Dloral.Media;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Pipeline;

/// <summary>
/// Streams frames from an <see cref="IFrameSource"/> through an <see cref="IUpscaler"/> into an
/// <see cref="IFrameSink"/>. Memory is flat in clip length: only FramesBefore + 1 + FramesAfter input
/// tensors are alive at once, plus a couple of frames queued on each side. Decoding, upscaling and
/// encoding overlap (one reader and one writer thread), so ffmpeg on both ends stays busy.
/// </summary>
public sealed class VideoUpscaleJob
{
    private readonly IUpscaler _upscaler;
    private readonly Device _device;

    public VideoUpscaleJob(IUpscaler upscaler, Device? device = null)
    {
        _upscaler = upscaler ?? throw new ArgumentNullException(nameof(upscaler));
        _device = device ?? CPU;
    }

    /// <summary>Decoded and encoded frames queued between the threads (each side).</summary>
    public int QueueDepth { get; init; } = 2;

    /// <summary>
    /// Runs to the end of the source, then completes the sink (the output appears only now).
    /// Returns the number of frames written. On failure or cancellation the sink is left incomplete;
    /// disposing it removes the partial output.
    /// </summary>
    public long Run(IFrameSource source, IFrameSink sink, IProgress<UpscaleProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(sink);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var decoded = new BlockingCollection<VideoFrame>(Math.Max(1, QueueDepth));
        using var encoded = new BlockingCollection<VideoFrame>(Math.Max(1, QueueDepth));
        long? total = source.ExpectedFrames > 0 ? source.ExpectedFrames : null;
        var clock = Stopwatch.StartNew();

        var reader = Task.Factory.StartNew(() =>
        {
            try
            {
                foreach (var frame in source)
                {
                    stop.Token.ThrowIfCancellationRequested();
                    decoded.Add(frame, stop.Token);
                }
            }
            catch { stop.Cancel(); throw; }
            finally { decoded.CompleteAdding(); }
        }, stop.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        var writer = Task.Factory.StartNew(() =>
        {
            try
            {
                foreach (var frame in encoded.GetConsumingEnumerable(stop.Token)) sink.Write(frame);
            }
            catch { stop.Cancel(); throw; }
        }, stop.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        var ring = new FrameRing(_upscaler.FramesBefore);
        long received = 0, next = 0;
        int depth = source.Depth;
        try
        {
            foreach (var frame in decoded.GetConsumingEnumerable(stop.Token))
            {
                ring.Add(FrameTensors.ToTensor(frame, _device));
                received++;
                // Lookahead: frame `next` can be produced once FramesAfter later frames are in.
                while (received - 1 >= next + _upscaler.FramesAfter)
                    Emit(next++);
            }
            reader.Wait(stop.Token); // a decoder error ends the stream early: surface it before flushing
            while (next < received) Emit(next++);
            encoded.CompleteAdding();
            writer.Wait(stop.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or AggregateException)
        {
            stop.Cancel();
            encoded.CompleteAdding();
            ThrowFirstRealError(cancellationToken, reader, writer);
            throw;
        }
        finally
        {
            stop.Cancel(); // unblocks the reader if we stopped early
            try { Task.WaitAll([reader, writer], TimeSpan.FromSeconds(30)); } catch (AggregateException) { }
            ring.Dispose();
        }
        if (received == 0)
            throw new MediaException(source.Info.Path, "contains no video frames");
        cancellationToken.ThrowIfCancellationRequested();
        sink.Complete();
        return received;

        void Emit(long n)
        {
            using (var scope = NewDisposeScope())
            using (no_grad())
            {
                var window = ring.Window(n, received - 1, _upscaler.FramesAfter);
                var output = _upscaler.Upscale(window);
                var frame = FrameTensors.ToFrame(output, depth, n);
                encoded.Add(frame, stop.Token);
            }
            ring.DropBefore(n + 1 - _upscaler.FramesBefore);
            progress?.Report(UpscaleProgress.Create(n + 1, total, clock.Elapsed));
        }
    }

    /// <summary>After a stop, rethrows what actually went wrong (a reader/writer error) rather than the cancellation it caused.</summary>
    private static void ThrowFirstRealError(CancellationToken user, params Task[] tasks)
    {
        try { Task.WaitAll(tasks, TimeSpan.FromSeconds(30)); } catch (AggregateException) { }
        foreach (var t in tasks)
        {
            if (t.Exception is { } agg)
            {
                var inner = agg.Flatten().InnerExceptions.FirstOrDefault(e => e is not OperationCanceledException);
                if (inner is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(inner);
            }
        }
        user.ThrowIfCancellationRequested();
    }

    /// <summary>The input tensors still needed: frames [First, First + Count), oldest first.</summary>
    private sealed class FrameRing : IDisposable
    {
        private readonly List<Tensor> _frames = [];
        private readonly int _before;
        private long _first;

        public FrameRing(int before) => _before = before;

        public void Add(Tensor frame) => _frames.Add(frame);

        public FrameWindow Window(long n, long last, int after)
        {
            long from = Math.Max(_first, n - _before), to = Math.Min(last, n + after);
            var frames = new List<Tensor>((int)(to - from + 1));
            for (long i = from; i <= to; i++) frames.Add(_frames[(int)(i - _first)]);
            return new FrameWindow(frames, (int)(n - from), n, sceneStart: n == 0);
        }

        public void DropBefore(long n)
        {
            while (_first < n && _frames.Count > 0)
            {
                _frames[0].Dispose();
                _frames.RemoveAt(0);
                _first++;
            }
        }

        public void Dispose()
        {
            foreach (var f in _frames) f.Dispose();
            _frames.Clear();
        }
    }
}
