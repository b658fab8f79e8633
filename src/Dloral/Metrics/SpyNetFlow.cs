using Dloral.Checkpoints;
using Dloral.Temporal;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Metrics;

/// <summary>What range SPyNet weights were trained on: mmagic/BasicVSR SPyNet takes [0,1]; DLoRAL's CFR feeds [-1,1].</summary>
public enum SpyNetInputRange
{
    /// <summary>Frames in [0,1] (the standard pretrained SPyNet, e.g. mmagic's spynet_20210409).</summary>
    Unit,

    /// <summary>Frames mapped to [-1,1] (what DLoRAL's cross-frame retrieval passes to its SPyNet).</summary>
    Signed,
}

/// <summary>
/// The learned flow estimator for the temporal metrics: our <see cref="SpyNet"/> port with user-supplied weights
/// (safetensors; keys "basic_module.*" or with any prefix ending in "spynet.", e.g. a DLoRAL CFR checkpoint
/// converted to safetensors). Same convention as <see cref="IOpticalFlowEstimator"/>: from(p) ≈ to(p + flow(p)).
/// </summary>
public sealed class SpyNetFlow : IOpticalFlowEstimator, IDisposable
{
    private readonly SpyNet _net;
    private readonly Device _device;
    private readonly SpyNetInputRange _range;
    private readonly string _source;

    private SpyNetFlow(SpyNet net, Device device, SpyNetInputRange range, string source)
    {
        _net = net;
        _device = device;
        _range = range;
        _source = source;
    }

    public string Name => $"SPyNet (learned; weights {System.IO.Path.GetFileName(_source)}, inputs {(_range == SpyNetInputRange.Unit ? "[0,1]" : "[-1,1]")})";

    /// <summary>Loads the weights; missing, unexpected or mis-shaped tensors are an error naming the file.</summary>
    public static SpyNetFlow Load(string safetensorsPath, SpyNetInputRange range = SpyNetInputRange.Unit, Device? device = null)
    {
        device ??= CPU;
        using var file = SafeTensorsFile.Open(safetensorsPath);
        // Accept a bare SPyNet state dict or one nested under "...spynet." (CFR, BasicVSR checkpoints).
        string prefix = file.Entries.Keys.Where(k => k.Contains("spynet.basic_module.", StringComparison.Ordinal))
            .Select(k => k[..(k.IndexOf("spynet.basic_module.", StringComparison.Ordinal) + "spynet.".Length)]).FirstOrDefault() ?? "";
        var net = new SpyNet();
        var state = net.state_dict();
        var buffers = net.named_buffers().Select(b => b.name).ToHashSet(StringComparer.Ordinal);
        var missing = state.Keys.Where(k => !buffers.Contains(k) && !file.Contains(prefix + k)).ToList();
        if (missing.Count > 0)
        {
            net.Dispose();
            throw new InvalidDataException($"{safetensorsPath}: not SPyNet weights (missing {missing.Count}: {string.Join(", ", missing.Take(5))}{(prefix.Length > 0 ? $", looked under '{prefix}'" : "")})");
        }
        using (no_grad())
        {
            foreach (var (name, target) in state)
            {
                if (!file.Contains(prefix + name)) continue; // mean/std buffers: the constructor's ImageNet constants
                var shape = file.Entries[prefix + name].Shape;
                if (!shape.SequenceEqual(target.shape))
                {
                    net.Dispose();
                    throw new InvalidDataException($"{safetensorsPath}: {prefix + name} has shape [{string.Join(",", shape)}], expected [{string.Join(",", target.shape)}]");
                }
                file.ReadInto(prefix + name, target);
            }
        }
        net.eval();
        net.to(device);
        return new SpyNetFlow(net, device, range, safetensorsPath);
    }

    public Tensor Estimate(Tensor from, Tensor to)
    {
        if (!from.shape.SequenceEqual(to.shape))
            throw new ArgumentException($"optical flow: frame shapes differ: [{string.Join(",", from.shape)}] vs [{string.Join(",", to.shape)}]");
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        Tensor Prepare(Tensor x)
        {
            var t = (x.dim() == 3 ? x.unsqueeze(0) : x).to(ScalarType.Float32, _device);
            return _range == SpyNetInputRange.Signed ? t * 2.0 - 1.0 : t;
        }
        return _net.forward(Prepare(from), Prepare(to)).MoveToOuterDisposeScope();
    }

    public void Dispose() => _net.Dispose();
}
