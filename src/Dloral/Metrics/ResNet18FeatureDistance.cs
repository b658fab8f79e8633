using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Metrics;

/// <summary>
/// An offline perceptual distance in the spirit of LPIPS — but NOT LPIPS: ImageNet ResNet-18 features (from the
/// NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18) of five stages are unit-normalised along channels
/// at every position, the squared differences summed over channels and averaged over positions, and the five
/// stages averaged with equal weights (no learned linear heads). 0 = identical; larger = more different.
/// Reported as <c>resnet18_feature_distance</c>.
/// </summary>
public sealed class ResNet18FeatureDistance : IDisposable
{
    /// <summary>JSON key of this metric.</summary>
    public const string Key = "resnet18_feature_distance";

    private readonly ResNet18 _net;
    private readonly Device _device;

    private ResNet18FeatureDistance(ResNet18 net, Device device)
    {
        _net = net;
        _device = device;
    }

    /// <summary>Loads the network from <paramref name="onnxPath"/> or, when null, from <see cref="ResNet18OnnxImporter.FindModel"/>.</summary>
    public static ResNet18FeatureDistance Load(string? onnxPath = null, Device? device = null)
    {
        var path = onnxPath ?? ResNet18OnnxImporter.FindModel()
            ?? throw new FileNotFoundException($"ResNet-18 ONNX not found: set {ResNet18OnnxImporter.PathVariable} or restore the NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1");
        device ??= CPU;
        return new ResNet18FeatureDistance(ResNet18OnnxImporter.Load(path, device), device);
    }

    /// <summary>
    /// Distance between two RGB images [3,H,W] (or batches) in [0,1] of the same size (at least 32×32; sides that
    /// are not multiples of 32 are centre-cropped to one).
    /// </summary>
    public double Distance(Tensor a, Tensor b)
    {
        ImageLayout.CheckSameShape(a, b, Key);
        using var reference = Features(b);
        return Distance(a, reference);
    }

    /// <summary>
    /// Distance of <paramref name="image"/> to an image whose <see cref="Features"/> are already known: the
    /// evaluator computes the ground truth's features once per frame and reuses them for every row.
    /// </summary>
    public double Distance(Tensor image, FeatureMaps reference)
    {
        if (!image.shape.SequenceEqual(reference.ImageShape))
            throw new ArgumentException($"{Key}: image shapes differ: [{string.Join(",", image.shape)}] vs [{string.Join(",", reference.ImageShape)}]");
        using var features = Features(image);
        double total = 0;
        for (int i = 0; i < features.Stages.Length; i++)
        {
            using var stageScope = NewDisposeScope();
            using var mode = inference_mode();
            total += (features.Stages[i] - reference.Stages[i]).square().sum(1).mean().item<float>();
        }
        return total / features.Stages.Length;
    }

    /// <summary>The five stages' feature maps of an RGB image [3,H,W] (or batch) in [0,1], unit-normalised along channels.</summary>
    public FeatureMaps Features(Tensor image)
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var x = CenterCrop32((image.dim() == 3 ? image.unsqueeze(0) : image).to(ScalarType.Float32, _device));
        var stages = _net.Stages(ResNet18.Preprocess(x));
        var normalised = new Tensor[stages.Length];
        for (int i = 0; i < stages.Length; i++)
        {
            // Per-stage scope: the stem's full-resolution temporaries are freed before the next stage.
            using var stageScope = NewDisposeScope();
            normalised[i] = (stages[i] / (stages[i].square().sum(1, keepdim: true).sqrt() + 1e-10)).MoveToOuterDisposeScope();
            stages[i].Dispose();
        }
        foreach (var t in normalised) t.MoveToOuterDisposeScope();
        return new FeatureMaps(image.shape, normalised);
    }

    /// <summary>
    /// The export's begin-heavy padding makes the main and downsample branches disagree by one pixel on odd
    /// intermediate sizes (e.g. 1080 rows), so frames are centre-cropped to multiples of 32 (at most 31 pixels).
    /// </summary>
    private static Tensor CenterCrop32(Tensor x)
    {
        long h = x.shape[2], w = x.shape[3];
        if (h < 32 || w < 32) throw new ArgumentException($"{Key} needs frames of at least 32x32, got {w}x{h}");
        long h32 = h / 32 * 32, w32 = w / 32 * 32;
        if (h32 == h && w32 == w) return x;
        long top = (h - h32) / 2, left = (w - w32) / 2;
        return x.narrow(2, top, h32).narrow(3, left, w32);
    }

    public void Dispose() => _net.Dispose();
}

/// <summary>Unit-normalised ResNet-18 stage features of one image (see <see cref="ResNet18FeatureDistance.Features"/>); owns its tensors.</summary>
public sealed class FeatureMaps(long[] imageShape, Tensor[] stages) : IDisposable
{
    /// <summary>Shape of the image the features came from (before the centre crop).</summary>
    public long[] ImageShape { get; } = imageShape;

    /// <summary>Five [N,C,h,w] maps, unit length along C at every position.</summary>
    public Tensor[] Stages { get; } = stages;

    public void Dispose()
    {
        foreach (var t in Stages) t.Dispose();
    }
}
