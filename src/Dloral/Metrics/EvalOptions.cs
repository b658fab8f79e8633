using static TorchSharp.torch;

namespace Dloral.Metrics;

/// <summary>Settings of <see cref="VideoEvaluator"/>.</summary>
public sealed record EvalOptions
{
    /// <summary>Super-resolution scale: the border crop of the full-reference metrics and the bicubic factor for the LR row. Null: inferred from the LR and GT/result sizes, else 4.</summary>
    public int? Scale { get; init; }

    /// <summary>Compute <see cref="ResNet18FeatureDistance"/> (needs the ONNX model; a missing model is an error, not a silent skip).</summary>
    public bool FeatureDistance { get; init; } = true;

    /// <summary>ONNX file of the ResNet-18; null = <see cref="ResNet18OnnxImporter.FindModel"/>.</summary>
    public string? ResNet18OnnxPath { get; init; }

    /// <summary>
    /// LPIPS from user-supplied official weights, as a distance of two RGB images [3,H,W] in [0,1] (lower is better);
    /// null = not computed. The CLI builds it from <c>--lpips-vgg</c> and <c>--lpips-lin</c>.
    /// </summary>
    public Func<Tensor, Tensor, double>? Lpips { get; init; }

    /// <summary>Compute warping error and tOF.</summary>
    public bool Temporal { get; init; } = true;

    /// <summary>Flow estimator of the temporal metrics.</summary>
    public IOpticalFlowEstimator Flow { get; init; } = new LucasKanadeFlow();

    /// <summary>Upscaler of the low-resolution input for the "bicubic" row: (image [3,h,w], scale) → [3,h·s,w·s].</summary>
    public Func<Tensor, int, Tensor>? LowResUpscale { get; init; }

    /// <summary>Side of the square crops in the side-by-side PNGs (clamped to the frame).</summary>
    public int CropSize { get; init; } = 128;

    /// <summary>Evaluate at most this many frames.</summary>
    public long? MaxFrames { get; init; }

    /// <summary>Device for the metrics (frames are moved there).</summary>
    public Device? Device { get; init; }

    /// <summary>Progress callback: frames done so far.</summary>
    public Action<long>? OnFrame { get; init; }

    /// <summary>When set, every stage's wall and CPU time is added here (<c>dloral eval --timings</c>).</summary>
    public EvalTimings? Timings { get; init; }

    public CancellationToken CancellationToken { get; init; }
}
