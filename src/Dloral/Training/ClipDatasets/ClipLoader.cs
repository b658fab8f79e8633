using System.Threading.Channels;
using Dloral.Training.Degradations;
using static TorchSharp.torch;

namespace Dloral.Training.ClipDatasets;

/// <summary>Options of <see cref="ClipLoader"/>.</summary>
public sealed class ClipLoaderOptions
{
    public long Seed { get; set; } = 123;
    /// <summary>Clips prepared ahead of the consumer (the bound of the channel).</summary>
    public int Prefetch { get; set; } = 4;
    /// <summary>Clips prepared concurrently (decode + motion + degradation).</summary>
    public int Workers { get; set; } = 1;
    /// <summary>Shuffle the order every epoch (seeded); false = dataset order.</summary>
    public bool Shuffle { get; set; } = true;
    /// <summary>Super-resolution factor for the degradation (LR = HR / Scale).</summary>
    public int Scale { get; set; } = 4;
    /// <summary>First position to produce (resume: the trainer stores how many clips it consumed).</summary>
    public long StartPosition { get; set; }
}

/// <summary>A training pair: the HR clip and (when a degrader is configured) its degraded LR clip.</summary>
public sealed class TrainingClip : IDisposable
{
    public required ClipSample Sample { get; init; }
    public Tensor Hr => Sample.Hr;
    /// <summary>[T,3,H/scale,W/scale], or null without a degrader.</summary>
    public Tensor? Lr { get; init; }
    public DegradationPlan? Plan { get; init; }
    /// <summary>Global position in the loader's stream (epoch · Count + rank in the epoch).</summary>
    public required long Position { get; init; }
    public required long Seed { get; init; }

    public void Dispose()
    {
        Sample.Dispose();
        Lr?.Dispose();
    }
}

/// <summary>
/// Background loading: worker tasks decode, animate and degrade clips ahead of the trainer into a
/// bounded channel. Position p gets the seed Derive(seed, p) and the epoch's seeded permutation, and
/// results are handed out strictly in position order, so the stream is identical whatever the
/// number of workers or the thread timing (and a resumed run continues it from StartPosition).
/// </summary>
public sealed class ClipLoader : IDisposable
{
    private readonly IClipDataset _dataset;
    private readonly Degrader? _degrader;
    private readonly ClipLoaderOptions _options;
    private readonly Channel<Task<TrainingClip>> _channel;
    private readonly CancellationTokenSource _cts = new();
    private readonly SemaphoreSlim _workers;
    private readonly Task _producer;
    private int[]? _order;
    private long _orderEpoch = -1;

    public ClipLoader(IClipDataset dataset, ClipLoaderOptions? options = null, Degrader? degrader = null)
    {
        _dataset = dataset;
        _options = options ?? new ClipLoaderOptions();
        _degrader = degrader;
        if (_options.Prefetch < 1 || _options.Workers < 1)
            throw new ArgumentException("ClipLoader: prefetch and workers must be >= 1.");
        _workers = new SemaphoreSlim(_options.Workers);
        _channel = Channel.CreateBounded<Task<TrainingClip>>(new BoundedChannelOptions(_options.Prefetch)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _producer = Task.Run(ProduceAsync);
    }

    /// <summary>The clip at a stream position, computed synchronously (what the background workers compute).</summary>
    public TrainingClip Make(long position)
    {
        long epoch = position / _dataset.Count;
        int rank = (int)(position % _dataset.Count);
        int index = _options.Shuffle ? OrderOf(epoch)[rank] : rank;
        long seed = DegradationRandom.Derive(_options.Seed, position);
        var sample = _dataset.Get(index, seed);
        if (_degrader is null)
            return new TrainingClip { Sample = sample, Position = position, Seed = seed };
        try
        {
            var lr = _degrader.DegradeClip(sample.Hr, _options.Scale, DegradationRandom.Derive(seed, 1), out var plan);
            return new TrainingClip { Sample = sample, Lr = lr, Plan = plan, Position = position, Seed = seed };
        }
        catch
        {
            sample.Dispose();
            throw;
        }
    }

    private int[] OrderOf(long epoch)
    {
        lock (_cts)
        {
            if (_orderEpoch == epoch && _order is not null) return _order;
            var rng = new DegradationRandom(DegradationRandom.Derive(_options.Seed, -1, epoch));
            var order = Enumerable.Range(0, _dataset.Count).ToArray();
            for (int i = order.Length - 1; i > 0; i--)
            {
                int j = rng.Int(0, i);
                (order[i], order[j]) = (order[j], order[i]);
            }
            _order = order;
            _orderEpoch = epoch;
            return order;
        }
    }

    private async Task ProduceAsync()
    {
        var ct = _cts.Token;
        try
        {
            for (long p = _options.StartPosition; !ct.IsCancellationRequested; p++)
            {
                await _workers.WaitAsync(ct).ConfigureAwait(false);
                long position = p;
                var work = Task.Run(() =>
                {
                    try
                    {
                        return Make(position);
                    }
                    finally
                    {
                        _workers.Release();
                    }
                }, CancellationToken.None);
                try
                {
                    await _channel.Writer.WriteAsync(work, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // nobody will read this clip: free its tensors when it is done
                    _ = work.ContinueWith(w => { if (w.IsCompletedSuccessfully) w.Result.Dispose(); }, TaskScheduler.Default);
                    throw;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            _channel.Writer.TryComplete();
        }
    }

    /// <summary>The next clip in stream order; waits only if the workers are behind. Errors of a worker surface here.</summary>
    public TrainingClip Next() => NextAsync().AsTask().GetAwaiter().GetResult();

    public async ValueTask<TrainingClip> NextAsync(CancellationToken cancellationToken = default)
    {
        var work = await _channel.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        return await work.ConfigureAwait(false);
    }

    public void Dispose()
    {
        _cts.Cancel();
        try
        {
            _producer.Wait();
        }
        catch (AggregateException)
        {
        }
        while (_channel.Reader.TryRead(out var work))
        {
            try
            {
                work.GetAwaiter().GetResult().Dispose();
            }
            catch (Exception)
            {
                // a failed prefetched clip that nobody asked for
            }
        }
        // _workers is not disposed: a cancelled worker may still release it.
        _cts.Dispose();
    }
}
