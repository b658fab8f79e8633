using Dloral.Metrics;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Training.Losses;

/// <summary>
/// Differentiable perceptual loss on ImageNet ResNet-18 features (the network of
/// <see cref="ResNet18FeatureDistance"/>, from the NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18, loaded
/// offline): five stages, features unit-normalised along channels, squared differences summed over channels, averaged
/// over positions, stages averaged. It stands in for the reference's LPIPS(VGG) because LPIPS' linear heads and VGG
/// weights cannot be downloaded here; it is NOT LPIPS, and its scale differs (so λ_lpips weights a different number).
/// The network is frozen (no parameter gets a gradient); gradients flow to the prediction only.
/// </summary>
public sealed class PerceptualLoss : IPerceptualLoss
{
    private readonly ResNet18 _net;

    private PerceptualLoss(ResNet18 net)
    {
        _net = net;
        _net.eval();
        foreach (var p in _net.parameters()) p.requires_grad = false;
    }

    /// <summary>Loads the ONNX network (<paramref name="onnxPath"/> or <see cref="ResNet18OnnxImporter.FindModel"/>).</summary>
    public static PerceptualLoss Load(string? onnxPath = null, Device? device = null)
    {
        var path = onnxPath ?? ResNet18OnnxImporter.FindModel()
            ?? throw new FileNotFoundException($"perceptual loss: ResNet-18 ONNX not found; set {ResNet18OnnxImporter.PathVariable} or restore the NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1, or set \"perceptual\": \"none\" in the training config");
        return new PerceptualLoss(ResNet18OnnxImporter.Load(path, device ?? CPU));
    }

    /// <summary>Mean distance over the batch; prediction and target [n,3,H,W] in [−1,1] (the model's range).</summary>
    public Tensor Compute(Tensor prediction, Tensor target)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        ArgumentNullException.ThrowIfNull(target);
        if (!prediction.shape.SequenceEqual(target.shape))
            throw new ArgumentException($"perceptual loss: prediction [{string.Join(",", prediction.shape)}] and target [{string.Join(",", target.shape)}] differ");
        using var scope = NewDisposeScope();
        var x = ResNet18.Preprocess(prediction.to_type(ScalarType.Float32) * 0.5 + 0.5);
        var fx = _net.Stages(x);
        Tensor[] fy;
        using (no_grad())
            fy = _net.Stages(ResNet18.Preprocess(target.to_type(ScalarType.Float32).to(x.device) * 0.5 + 0.5));
        Tensor? total = null;
        for (int i = 0; i < fx.Length; i++)
        {
            var na = fx[i] / (fx[i].square().sum(1, keepdim: true).sqrt() + 1e-10);
            var nb = fy[i] / (fy[i].square().sum(1, keepdim: true).sqrt() + 1e-10);
            var d = (na - nb).square().sum(1).mean();
            total = total is null ? d : total + d;
        }
        return (total! / fx.Length).MoveToOuterDisposeScope();
    }

    public void Dispose() => _net.Dispose();
}
