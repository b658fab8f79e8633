using static TorchSharp.torch;

namespace Dloral.Metrics;

/// <summary>Metrics of one evaluated sequence (a result, or the bicubic of the low-resolution input).</summary>
public sealed class EvalRow
{
    public EvalRow(string name, string path, string kind)
    {
        Name = name;
        Path = path;
        Kind = kind;
    }

    /// <summary>Display name (file name of the result, or "bicubic").</summary>
    public string Name { get; }

    public string Path { get; }

    /// <summary>"result" or "bicubic".</summary>
    public string Kind { get; }

    /// <summary>Per frame: metric key → value. +∞ PSNR for identical frames; absent keys were not computed for that frame.</summary>
    public List<Dictionary<string, double>> Frames { get; } = [];

    /// <summary>Clip value of <paramref name="key"/>: the mean over frames of the finite values (null when none).</summary>
    public double? Clip(string key)
    {
        var values = Frames.Where(f => f.ContainsKey(key)).Select(f => f[key]).Where(double.IsFinite).ToList();
        return values.Count == 0 ? null : values.Average();
    }

    /// <summary>Frames whose RGB PSNR is +∞ (bit-identical to the ground truth after the border crop).</summary>
    public int IdenticalFrames => Frames.Count(f => f.TryGetValue(MetricKeys.PsnrRgb, out var v) && double.IsPositiveInfinity(v));

    /// <summary>True when the key was computed for at least one frame.</summary>
    public bool Has(string key) => Frames.Any(f => f.ContainsKey(key));
}

/// <summary>
/// Side-by-side crops of one frame: a square region (X, Y, Size) of every row and of the ground truth; Tiles are
/// label and [3,S,S] CPU crop, in display order (bicubic, results, ground truth).
/// </summary>
public sealed record CropSet(long FrameIndex, int X, int Y, int Size, IReadOnlyList<(string Label, Tensor Crop)> Tiles);

/// <summary>Everything <see cref="VideoEvaluator"/> measured; written by <see cref="ReportWriter"/>.</summary>
public sealed class EvalReport : IDisposable
{
    public required int Scale { get; init; }
    public required int CropBorder { get; init; }
    public string? GroundTruthPath { get; init; }
    public string? LowResPath { get; init; }
    public required int Width { get; init; }
    public required int Height { get; init; }
    public long FrameCount { get; set; }

    /// <summary>Name of the flow estimator used by the temporal metrics (null when they were off).</summary>
    public string? FlowEstimator { get; init; }

    /// <summary>"ground truth" or "each result" (where the warping flow came from).</summary>
    public string? FlowSource { get; init; }

    public string? FeatureModelPath { get; init; }
    public List<EvalRow> Rows { get; } = [];
    public List<CropSet> Crops { get; } = [];
    public double Seconds { get; set; }

    public void Dispose()
    {
        foreach (var c in Crops)
            foreach (var (_, crop) in c.Tiles) crop.Dispose();
        Crops.Clear();
    }
}
