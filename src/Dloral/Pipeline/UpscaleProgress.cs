namespace Dloral.Pipeline;

/// <summary>Progress of an upscale run, reported after every written frame.</summary>
/// <param name="FramesDone">Frames written so far.</param>
/// <param name="TotalFrames">Frames expected in total, or null when the input does not say.</param>
/// <param name="FramesPerSecond">Average throughput since the start.</param>
/// <param name="Elapsed">Wall time since the first frame was requested.</param>
/// <param name="Eta">Estimated remaining time, or null when the total is unknown.</param>
public sealed record UpscaleProgress(long FramesDone, long? TotalFrames, double FramesPerSecond, TimeSpan Elapsed, TimeSpan? Eta)
{
    /// <summary>Fraction done in [0,1], or null when the total is unknown.</summary>
    public double? Fraction => TotalFrames is > 0 ? Math.Min(1.0, (double)FramesDone / TotalFrames.Value) : null;

    internal static UpscaleProgress Create(long done, long? total, TimeSpan elapsed)
    {
        double secs = elapsed.TotalSeconds;
        double fps = secs > 0 ? done / secs : 0;
        TimeSpan? eta = total is { } t && fps > 0 ? TimeSpan.FromSeconds(Math.Max(0, t - done) / fps) : null;
        return new UpscaleProgress(done, total, fps, elapsed, eta);
    }
}
