using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Dloral.Temporal;

/// <summary>A frame's compact signature for cut detection: a 32×32 gray thumbnail and a 32-bin gray histogram.</summary>
public sealed class FrameSignature : IDisposable
{
    internal FrameSignature(Tensor thumbnail, Tensor histogram)
    {
        Thumbnail = thumbnail;
        Histogram = histogram;
    }

    /// <summary>Gray thumbnail [S,S] in [0,1] (area average).</summary>
    public Tensor Thumbnail { get; }

    /// <summary>Normalised gray histogram [bins] (sums to 1).</summary>
    public Tensor Histogram { get; }

    public void Dispose()
    {
        Thumbnail.Dispose();
        Histogram.Dispose();
    }
}

/// <summary>
/// Deterministic scene-cut detection between consecutive frames, so that a new shot starts a new temporal
/// window instead of warping across the cut. A cut needs BOTH a large mean absolute difference of 32×32
/// gray thumbnails (content changed at the same places) AND a large histogram distance (the tone
/// distribution changed): motion alone raises the first, a global fade/flash mostly the second.
/// </summary>
public sealed class SceneCutDetector : IDisposable
{
    private FrameSignature? _previous;

    /// <summary>Thumbnail side (area-averaged).</summary>
    public int ThumbnailSize { get; init; } = 32;

    /// <summary>Histogram bins over [0,1].</summary>
    public int Bins { get; init; } = 32;

    /// <summary>Mean |Δ| of the thumbnails (in [0,1]) at or above which content is considered changed.</summary>
    public double DifferenceThreshold { get; init; } = 0.10;

    /// <summary>Histogram distance (½·L1, in [0,1]) at or above which tones are considered changed.</summary>
    public double HistogramThreshold { get; init; } = 0.30;

    /// <summary>
    /// Signature of a frame: float [3,H,W] or [1,3,H,W] in [0,1], or uint8 of the same shapes.
    /// </summary>
    public FrameSignature Signature(Tensor frame)
    {
        ArgumentNullException.ThrowIfNull(frame);
        using var scope = NewDisposeScope();
        var x = frame.dim() == 3 ? frame.unsqueeze(0) : frame;
        if (x.dim() != 4 || x.shape[1] != 3)
            throw new ArgumentException($"scene cut detector expects an RGB frame [3,H,W] or [1,3,H,W], got [{string.Join(",", frame.shape)}]");
        x = x.dtype == ScalarType.Byte ? x.to_type(ScalarType.Float32).div(255.0) : x.to_type(ScalarType.Float32);
        var gray = (x[.., 0] * 0.299 + x[.., 1] * 0.587 + x[.., 2] * 0.114).unsqueeze(1); // [1,1,H,W]
        var thumb = F.adaptive_avg_pool2d(gray, [ThumbnailSize, ThumbnailSize]).reshape(ThumbnailSize, ThumbnailSize).cpu();
        var hist = gray.cpu().flatten().histc(Bins, 0, 1);
        hist = hist / hist.sum();
        return new FrameSignature(thumb.MoveToOuterDisposeScope(), hist.MoveToOuterDisposeScope());
    }

    /// <summary>Mean |Δ| of the thumbnails and ½·L1 distance of the histograms.</summary>
    public static (double Difference, double HistogramDistance) Distance(FrameSignature a, FrameSignature b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        using var scope = NewDisposeScope();
        double diff = (a.Thumbnail - b.Thumbnail).abs().mean().item<float>();
        double hist = 0.5 * (a.Histogram - b.Histogram).abs().sum().item<float>();
        return (diff, hist);
    }

    /// <summary>True when the two signatures are on different sides of a cut.</summary>
    public bool IsCut(FrameSignature previous, FrameSignature current)
    {
        var (diff, hist) = Distance(previous, current);
        return diff >= DifferenceThreshold && hist >= HistogramThreshold;
    }

    /// <summary>Feeds the next frame of a stream; true when a cut lies between it and the previous frame (never for the first).</summary>
    public bool Observe(Tensor frame)
    {
        var sig = Signature(frame);
        bool cut = _previous is not null && IsCut(_previous, sig);
        _previous?.Dispose();
        _previous = sig;
        return cut;
    }

    /// <summary>Forgets the previous frame (e.g. at the start of a new video).</summary>
    public void Reset()
    {
        _previous?.Dispose();
        _previous = null;
    }

    public void Dispose() => Reset();
}
