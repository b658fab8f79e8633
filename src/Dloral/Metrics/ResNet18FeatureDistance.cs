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

    /// <summary>Distance between two RGB images [3,H,W] (or batches) in [0,1] of the same size (at least 32×32).</summary>
    public double Distance(Tensor a, Tensor b)
    {
        ImageLayout.CheckSameShape(a, b, Key);
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var x = (a.dim() == 3 ? a.unsqueeze(0) : a).to(ScalarType.Float32, _device);
        var y = (b.dim() == 3 ? b.unsqueeze(0) : b).to(ScalarType.Float32, _device);
        var fa = _net.Stages(ResNet18.Preprocess(x));
        var fb = _net.Stages(ResNet18.Preprocess(y));
        double total = 0;
        for (int i = 0; i < fa.Length; i++)
        {
            var na = fa[i] / (fa[i].square().sum(1, keepdim: true).sqrt() + 1e-10);
            var nb = fb[i] / (fb[i].square().sum(1, keepdim: true).sqrt() + 1e-10);
            total += (na - nb).square().sum(1).mean().item<float>();
        }
        return total / fa.Length;
    }

    public void Dispose() => _net.Dispose();
}
