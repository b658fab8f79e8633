using Dloral.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Dloral.Training.Losses;

/// <summary>
/// LPIPS v0.1 with the VGG-16 backbone (<c>lpips.LPIPS(net='vgg')</c>, what DLoRAL trains with), built from
/// user-supplied official weights: the torchvision VGG-16 file (<c>vgg16-397923af.pth</c>, keys <c>features.N.*</c>)
/// and LPIPS' linear heads (<c>lpips/weights/v0.1/vgg.pth</c>, keys <c>linK.model.1.weight</c>); .pth or .safetensors.
/// Inputs in [−1,1] are shifted/scaled by LPIPS' ScalingLayer; features at relu1_2, relu2_2, relu3_3, relu4_3 and
/// relu5_3 are unit-normalised along channels, squared differences weighted by the 1×1 heads, averaged over space,
/// summed over layers. Nothing can be downloaded here, so parity with the Python package is untested.
/// </summary>
public sealed class LpipsLoss : IPerceptualLoss
{
    private static readonly int[][] Slices =
    [
        [0, 2], [5, 7], [10, 12, 14], [17, 19, 21], [24, 26, 28],
    ];

    private static readonly int[] Channels = [64, 128, 256, 512, 512];

    private readonly Dictionary<int, (Tensor W, Tensor B)> _convs = [];
    private readonly Tensor[] _lins = new Tensor[5];
    private readonly Tensor _shift;
    private readonly Tensor _scale;

    private LpipsLoss(IReadOnlyDictionary<string, Tensor> vgg, IReadOnlyDictionary<string, Tensor> lins, Device device, string source)
    {
        var missing = new List<string>();
        foreach (var i in Slices.SelectMany(s => s))
        {
            if (!vgg.TryGetValue($"features.{i}.weight", out var w) || !vgg.TryGetValue($"features.{i}.bias", out var b)) { missing.Add($"features.{i}.weight/bias"); continue; }
            _convs[i] = (w.to(ScalarType.Float32, device).detach().clone().DetachFromDisposeScope(), b.to(ScalarType.Float32, device).detach().clone().DetachFromDisposeScope());
        }
        for (int k = 0; k < 5; k++)
        {
            if (!lins.TryGetValue($"lin{k}.model.1.weight", out var l)) { missing.Add($"lin{k}.model.1.weight"); continue; }
            if (!l.shape.SequenceEqual(new long[] { 1, Channels[k], 1, 1 }))
                throw new InvalidDataException($"{source}: lin{k}.model.1.weight is [{string.Join(",", l.shape)}], expected [1,{Channels[k]},1,1]");
            _lins[k] = l.to(ScalarType.Float32, device).detach().clone().DetachFromDisposeScope();
        }
        if (missing.Count > 0) throw new InvalidDataException($"{source}: LPIPS-VGG weights missing: {string.Join(", ", missing)}");
        _shift = tensor(new[] { -.030f, -.088f, -.188f }, device: device).view(1, 3, 1, 1).DetachFromDisposeScope();
        _scale = tensor(new[] { .458f, .448f, .450f }, device: device).view(1, 3, 1, 1).DetachFromDisposeScope();
    }

    /// <summary>Loads the VGG-16 backbone file and the LPIPS head file (.pth via the safe unpickler, or .safetensors).</summary>
    public static LpipsLoss Load(string vggPath, string linPath, Device? device = null)
    {
        var vgg = ReadStateDict(vggPath);
        var lins = ReadStateDict(linPath);
        try
        {
            return new LpipsLoss(vgg, lins, device ?? CPU, $"{vggPath} + {linPath}");
        }
        finally
        {
            foreach (var t in vgg.Values.Concat(lins.Values)) t.Dispose();
        }
    }

    private static Dictionary<string, Tensor> ReadStateDict(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"LPIPS weights '{path}' not found", path);
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
        {
            using var f = SafeTensorsFile.Open(path);
            return f.LoadAll(ScalarType.Float32);
        }
        using var checkpoint = TorchCheckpoint.Load(path);
        return TorchCheckpoint.AsStateDict(checkpoint.Root, "state dict", path).ToDictionary(kv => kv.Key, kv => kv.Value.clone().DetachFromDisposeScope());
    }

    private Tensor[] Features(Tensor x)
    {
        var outputs = new Tensor[5];
        var h = (x - _shift) / _scale;
        for (int s = 0; s < 5; s++)
        {
            if (s > 0) h = F.max_pool2d(h, 2, 2);
            foreach (var i in Slices[s])
            {
                var (w, b) = _convs[i];
                h = F.relu(F.conv2d(h, w, b, padding: [1, 1]));
            }
            outputs[s] = h;
        }
        return outputs;
    }

    public Tensor Compute(Tensor prediction, Tensor target)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        ArgumentNullException.ThrowIfNull(target);
        if (!prediction.shape.SequenceEqual(target.shape))
            throw new ArgumentException($"LPIPS: prediction [{string.Join(",", prediction.shape)}] and target [{string.Join(",", target.shape)}] differ");
        using var scope = NewDisposeScope();
        var fx = Features(prediction.to_type(ScalarType.Float32));
        Tensor[] fy;
        using (no_grad()) fy = Features(target.to_type(ScalarType.Float32).to(prediction.device));
        Tensor? total = null;
        for (int k = 0; k < 5; k++)
        {
            var a = fx[k] / (fx[k].square().sum(1, keepdim: true).sqrt() + 1e-10);
            var b = fy[k] / (fy[k].square().sum(1, keepdim: true).sqrt() + 1e-10);
            var d = F.conv2d((a - b).square(), _lins[k]).mean([2, 3], keepdim: true);
            total = total is null ? d : total + d;
        }
        return total!.mean().MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var (w, b) in _convs.Values) { w.Dispose(); b.Dispose(); }
        foreach (var l in _lins) l?.Dispose();
        _shift.Dispose();
        _scale.Dispose();
    }
}
