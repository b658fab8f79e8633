using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Metrics;

/// <summary>
/// Loads the weights of the ImageNet ResNet-18 ONNX shipped by the NuGet package
/// <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> (a CNTK export: parameters are called "Parameter91",
/// "Constant98", …) into <see cref="ResNet18"/>. Names are mapped by graph structure: the 7×7 conv is the stem,
/// 1×1 convs are the downsample branches in order, 3×3 convs fill layer1.0.conv1 … layer4.2.conv2 in order
/// (block counts per stage are counted from the 3×3 convs' output channels: [2,2,2,3] in this package), and
/// each BatchNormalization is the one consuming its conv's output. Shapes, strides and pads are checked.
/// </summary>
public static class ResNet18OnnxImporter
{
    /// <summary>Package-relative location, also the path the build copies next to executables.</summary>
    public const string RelativeModelPath = "DnnImageModels/ResNet18Onnx/ResNet18.onnx";

    /// <summary>Environment variable that overrides where the ONNX file is looked for.</summary>
    public const string PathVariable = "DLORAL_RESNET18_ONNX";

    /// <summary>
    /// The model file: $DLORAL_RESNET18_ONNX, else next to the executable, else the NuGet cache
    /// (~/.nuget/packages/microsoft.ml.dnnimagefeaturizer.resnet18/0.23.1/tools/…). Null when none exists.
    /// </summary>
    public static string? FindModel()
    {
        var env = Environment.GetEnvironmentVariable(PathVariable);
        if (!string.IsNullOrEmpty(env)) return env;
        var local = Path.Combine(AppContext.BaseDirectory, RelativeModelPath);
        if (File.Exists(local)) return local;
        var nugetRoot = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var cached = Path.Combine(nugetRoot, "microsoft.ml.dnnimagefeaturizer.resnet18", "0.23.1", "tools", RelativeModelPath);
        return File.Exists(cached) ? cached : null;
    }

    /// <summary>Builds a <see cref="ResNet18"/> in eval mode with the ONNX weights, on <paramref name="device"/>.</summary>
    public static ResNet18 Load(string onnxPath, Device? device = null)
    {
        var onnx = OnnxModelReader.Read(onnxPath);
        var blocks = BlockCounts(onnx, onnxPath);
        var weights = MapWeights(onnx, blocks, onnxPath);
        var model = new ResNet18(blocks);
        var state = model.state_dict();
        var missing = state.Keys.Where(k => !k.EndsWith("num_batches_tracked", StringComparison.Ordinal) && !weights.ContainsKey(k)).ToList();
        if (missing.Count > 0) throw new InvalidDataException($"{onnxPath}: no weights found for {string.Join(", ", missing)}");
        using (no_grad())
        {
            foreach (var (name, init) in weights)
            {
                if (!state.TryGetValue(name, out var target))
                    throw new InvalidDataException($"{onnxPath}: mapped weight '{name}' ({init.Name}) has no place in ResNet18");
                if (!target.shape.SequenceEqual(init.Dims))
                    throw new InvalidDataException($"{onnxPath}: '{init.Name}' → {name}: shape [{string.Join(",", init.Dims)}], expected [{string.Join(",", target.shape)}]");
                using var source = tensor(init.Data, init.Dims);
                target.copy_(source);
            }
        }
        model.eval();
        if (device is not null) model.to(device);
        return model;
    }

    private static int[] BlockCounts(OnnxModelReader onnx, string path)
    {
        var counts = new int[4];
        foreach (var conv in onnx.Nodes.Where(n => n.OpType == "Conv"))
        {
            if (!conv.IntAttributes.TryGetValue("kernel_shape", out var k) || k[0] != 3) continue;
            if (conv.Inputs.Count < 2 || !onnx.Initializers.TryGetValue(conv.Inputs[1], out var w))
                throw new InvalidDataException($"{path}: {conv.Name} has no weight initializer");
            int stage = w.Dims[0] switch { 64 => 0, 128 => 1, 256 => 2, 512 => 3, _ => -1 };
            if (stage < 0) throw new InvalidDataException($"{path}: {conv.Name} has {w.Dims[0]} output channels, not a ResNet-18/34 stage width");
            counts[stage]++;
        }
        if (counts.Any(c => c == 0 || c % 2 != 0))
            throw new InvalidDataException($"{path}: 3x3 convolutions per stage [{string.Join(",", counts)}] do not form basic blocks");
        return counts.Select(c => c / 2).ToArray();
    }

    private static Dictionary<string, OnnxInitializer> MapWeights(OnnxModelReader onnx, int[] blocks, string path)
    {
        var consumers = new Dictionary<string, OnnxNode>();
        foreach (var n in onnx.Nodes.Where(n => n.OpType == "BatchNormalization")) consumers[n.Inputs[0]] = n;
        var convs = onnx.Nodes.Where(n => n.OpType == "Conv").ToList();
        int expectedConvs = 1 + 2 * blocks.Sum() + 3;
        if (convs.Count != expectedConvs)
            throw new InvalidDataException($"{path}: expected {expectedConvs} convolutions for blocks [{string.Join(",", blocks)}], found {convs.Count}");

        var threeByThree = new Queue<string>();
        foreach (var layer in new[] { 1, 2, 3, 4 })
            for (int block = 0; block < blocks[layer - 1]; block++)
            {
                threeByThree.Enqueue($"layer{layer}.{block}.conv1|layer{layer}.{block}.bn1|{(layer > 1 && block == 0 ? 2 : 1)}");
                threeByThree.Enqueue($"layer{layer}.{block}.conv2|layer{layer}.{block}.bn2|1");
            }
        var oneByOne = new Queue<string>(new[] { 2, 3, 4 }.Select(l => $"layer{l}.0.downsample.0|layer{l}.0.downsample.1|2"));

        var result = new Dictionary<string, OnnxInitializer>();
        foreach (var conv in convs)
        {
            long k = conv.IntAttributes.TryGetValue("kernel_shape", out var ks) ? ks[0] : -1;
            string target = k switch
            {
                7 => "conv1|bn1|2",
                3 when threeByThree.Count > 0 => threeByThree.Dequeue(),
                1 when oneByOne.Count > 0 => oneByOne.Dequeue(),
                _ => throw new InvalidDataException($"{path}: unexpected convolution {conv.Name} with kernel {k}"),
            };
            var parts = target.Split('|');
            long stride = conv.IntAttributes.TryGetValue("strides", out var st) ? st[0] : 1;
            if (stride != long.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture))
                throw new InvalidDataException($"{path}: {conv.Name} mapped to {parts[0]} has stride {stride}, expected {parts[2]}");
            CheckPads(conv, k, stride, path);
            if (conv.Inputs.Count != 2) throw new InvalidDataException($"{path}: {conv.Name} has a bias; ResNet-18 convs have none");
            result[parts[0] + ".weight"] = Initializer(onnx, conv.Inputs[1], path);
            if (!consumers.TryGetValue(conv.Outputs[0], out var bn))
                throw new InvalidDataException($"{path}: no BatchNormalization follows {conv.Name}");
            if (bn.FloatAttributes.TryGetValue("epsilon", out var eps) && Math.Abs(eps - 1e-5) > 1e-9)
                throw new InvalidDataException($"{path}: {bn.Name} has epsilon {eps}, ResNet18 uses 1e-5");
            result[parts[1] + ".weight"] = Initializer(onnx, bn.Inputs[1], path);
            result[parts[1] + ".bias"] = Initializer(onnx, bn.Inputs[2], path);
            result[parts[1] + ".running_mean"] = Initializer(onnx, bn.Inputs[3], path);
            result[parts[1] + ".running_var"] = Initializer(onnx, bn.Inputs[4], path);
        }
        return result;
    }

    /// <summary>Our module hard-codes the export's padding; refuse a model that pads differently.</summary>
    private static void CheckPads(OnnxNode conv, long kernel, long stride, string path)
    {
        long[] expected = (kernel, stride) switch
        {
            (7, 2) => [3, 3, 2, 2],
            (3, 2) => [1, 1, 0, 0],
            (3, 1) => [1, 1, 1, 1],
            _ => [0, 0, 0, 0],
        };
        var pads = conv.IntAttributes.TryGetValue("pads", out var p) ? p : [0, 0, 0, 0];
        if (!pads.SequenceEqual(expected))
            throw new InvalidDataException($"{path}: {conv.Name} pads [{string.Join(",", pads)}], expected [{string.Join(",", expected)}]");
    }

    private static OnnxInitializer Initializer(OnnxModelReader onnx, string name, string path) =>
        onnx.Initializers.TryGetValue(name, out var init) ? init : throw new InvalidDataException($"{path}: initializer '{name}' is missing");
}
