using System.Diagnostics;
using Dloral.Media;
using static TorchSharp.torch;

namespace Dloral.Training.Degradations;

/// <summary>Options of <see cref="DegradeJob"/> (what <c>dloral degrade</c> exposes).</summary>
public sealed record DegradeJobOptions
{
    public int Scale { get; init; } = 4;
    public DegradationConfig Config { get; init; } = DegradationConfig.Dloral();
    public long Seed { get; init; }
    /// <summary>Frames degraded together; each chunk is one H.264/H.265 round trip (one GOP).</summary>
    public int ChunkFrames { get; init; } = 16;
    public TimeSpan? Start { get; init; }
    public long? MaxFrames { get; init; }
    public bool Overwrite { get; init; }
    /// <summary>Codec of a video output (default lossless FFV1 for .mkv, otherwise H.264 at CRF 0 so the output adds no artifacts of its own beyond chroma subsampling).</summary>
    public VideoCodec? OutputCodec { get; init; }
    public int? OutputCrf { get; init; }
    public Action<string>? OnWarning { get; init; }
    /// <summary>Frames written so far.</summary>
    public IProgress<long>? Progress { get; init; }
}

/// <summary>What a <see cref="DegradeJob"/> did.</summary>
public sealed record DegradeResult(string OutputPath, long Frames, int Width, int Height, DegradationPlan Plan, TimeSpan Elapsed);

/// <summary>
/// Degrades a whole input (video, image or image folder) into a low-resolution test clip: one
/// <see cref="DegradationPlan"/> for the whole input (the same blur, resizes, noise level and JPEG
/// qualities for every frame, fresh noise per frame), streamed in chunks through Media's
/// FrameSource → <see cref="Degrader"/> → FrameWriter (audio, subtitles and frame rate kept).
/// </summary>
public static class DegradeJob
{
    public static DegradeResult Run(string input, string output, DegradeJobOptions options, CancellationToken cancellationToken = default)
    {
        if (options.Scale < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Scale, "Scale must be >= 1.");
        if (options.ChunkFrames < 1) throw new ArgumentOutOfRangeException(nameof(options), options.ChunkFrames, "ChunkFrames must be >= 1.");
        options.Config.Validate("<DegradeJob>");
        var sw = Stopwatch.StartNew();
        using var source = FrameSource.Open(input, new FrameSourceOptions
        {
            Start = options.Start,
            MaxFrames = options.MaxFrames,
            Depth = 8,
            OnWarning = options.OnWarning,
            CancellationToken = cancellationToken,
        });
        if (source.Width < options.Scale || source.Height < options.Scale)
            throw new MediaException(input, $"frames {source.Width}x{source.Height} are smaller than the scale {options.Scale}");

        var plan = DegradationPlan.Sample(options.Config, options.Scale, new DegradationRandom(options.Seed));
        using var noise = new Generator(plan.NoiseSeed);
        var writerOptions = FrameWriterOptions.MatchSource(source) with
        {
            Overwrite = options.Overwrite,
            Codec = options.OutputCodec ?? (Path.GetExtension(output).Equals(".mkv", StringComparison.OrdinalIgnoreCase) ? VideoCodec.Ffv1 : VideoCodec.H264),
            Crf = options.OutputCrf ?? 0,
            OnWarning = options.OnWarning,
            CancellationToken = cancellationToken,
        };
        using var writer = FrameWriter.Open(output, writerOptions);

        long written = 0;
        int lw = 0, lh = 0;
        var chunk = new List<Tensor>(options.ChunkFrames);
        void Flush()
        {
            if (chunk.Count == 0) return;
            using var scope = NewDisposeScope();
            var hr = stack(chunk, 0);
            var lr = Degrader.Apply(hr, plan, noise);
            lh = (int)lr.shape[2];
            lw = (int)lr.shape[3];
            for (int i = 0; i < chunk.Count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                writer.Write(FrameTensors.ToFrame(lr[i], 8, written));
                written++;
                options.Progress?.Report(written);
            }
            foreach (var t in chunk) t.Dispose();
            chunk.Clear();
        }

        try
        {
            foreach (var frame in source)
            {
                cancellationToken.ThrowIfCancellationRequested();
                chunk.Add(FrameTensors.ToTensor(frame));
                if (chunk.Count == options.ChunkFrames) Flush();
            }
            Flush();
        }
        finally
        {
            foreach (var t in chunk) t.Dispose();
        }
        if (written == 0) throw new MediaException(input, "no frames to degrade");
        writer.Complete();
        return new DegradeResult(writer.OutputPath, written, lw, lh, plan, sw.Elapsed);
    }
}
