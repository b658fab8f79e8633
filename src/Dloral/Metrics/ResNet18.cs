using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

#pragma warning disable IDE1006, CA1707 // field names follow torchvision's state_dict keys

namespace Dloral.Metrics;

/// <summary>
/// ImageNet ResNet trunk of basic blocks (torchvision layout and parameter names: conv1, bn1, layer1..layer4),
/// without the classifier. The "ResNet18" of Microsoft.ML.DnnImageFeaturizer.ResNet18 is a CNTK model with
/// [2, 2, 2, 3] blocks per stage (22 convolutions), one more block in layer4 than torchvision's resnet18; the
/// block counts are therefore a constructor argument, read from the ONNX graph by the importer. Padding follows the CNTK-exported ONNX of Microsoft.ML.DnnImageFeaturizer.ResNet18: strided
/// layers pad more at the start than at the end (identical to torchvision's symmetric padding on even sizes).
/// </summary>
public sealed class ResNet18 : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly Sequential layer1;
    private readonly Sequential layer2;
    private readonly Sequential layer3;
    private readonly Sequential layer4;

    /// <summary>Blocks per stage, as built.</summary>
    public IReadOnlyList<int> BlockCounts { get; }

    /// <param name="blockCounts">Basic blocks in layer1..layer4 (torchvision resnet18: 2,2,2,2; the ML.NET package: 2,2,2,3).</param>
    public ResNet18(IReadOnlyList<int> blockCounts) : base(nameof(ResNet18))
    {
        if (blockCounts.Count != 4 || blockCounts.Any(c => c < 1))
            throw new ArgumentException($"ResNet needs four stages of at least one block, got [{string.Join(",", blockCounts)}]");
        BlockCounts = blockCounts;
        conv1 = nn.Conv2d(3, 64, 7, stride: 2, bias: false);
        bn1 = nn.BatchNorm2d(64);
        layer1 = Stage(64, 64, 1, blockCounts[0]);
        layer2 = Stage(64, 128, 2, blockCounts[1]);
        layer3 = Stage(128, 256, 2, blockCounts[2]);
        layer4 = Stage(256, 512, 2, blockCounts[3]);
        RegisterComponents();
    }

    private static Sequential Stage(int inChannels, int outChannels, int stride, int blocks) =>
        nn.Sequential(Enumerable.Range(0, blocks).Select(i => (nn.Module<Tensor, Tensor>)(i == 0
            ? new BasicBlock(inChannels, outChannels, stride)
            : new BasicBlock(outChannels, outChannels, 1))).ToArray());

    /// <summary>The layer4 feature map [N,512,H/32,W/32] of a preprocessed input (see <see cref="Preprocess"/>).</summary>
    public override Tensor forward(Tensor input) => Stages(input)[^1];

    /// <summary>Five feature maps: after the stem ReLU (stride 2), layer1 (4), layer2 (8), layer3 (16), layer4 (32).</summary>
    public Tensor[] Stages(Tensor input)
    {
        using var scope = NewDisposeScope();
        // ONNX pads [3,3,2,2] (begin h,w / end h,w); F.pad order is (left, right, top, bottom).
        Tensor stem, pooled;
        using (var stemScope = NewDisposeScope())
        {
            // Full-resolution temporaries (conv, batch norm, padding) die here instead of at the end.
            stem = nn.functional.relu(bn1.forward(conv1.forward(nn.functional.pad(input, [3, 2, 3, 2])))).MoveToOuterDisposeScope();
            pooled = nn.functional.max_pool2d(nn.functional.pad(stem, [1, 0, 1, 0], value: double.NegativeInfinity), 3, 2).MoveToOuterDisposeScope();
        }
        var s1 = layer1.forward(pooled);
        var s2 = layer2.forward(s1);
        var s3 = layer3.forward(s2);
        var s4 = layer4.forward(s3);
        Tensor[] result = [stem, s1, s2, s3, s4];
        foreach (var t in result) t.MoveToOuterDisposeScope();
        return result;
    }

    /// <summary>
    /// RGB in [0,1] [N,3,H,W] → the network's input: 0..255, BGR, minus the per-channel mean of the package's
    /// ResNetPreprocess.onnx mean image (B 103.0626, G 115.9029, R 123.1516; that model subtracts a 224×224
    /// mean image, whose channel means we use so any frame size works).
    /// </summary>
    public static Tensor Preprocess(Tensor rgb)
    {
        using var scope = NewDisposeScope();
        var bgr = rgb.flip(1) * 255.0;
        var mean = tensor(new float[] { 103.0626f, 115.9029f, 123.1516f }, device: rgb.device).view(1, 3, 1, 1);
        return (bgr - mean).MoveToOuterDisposeScope();
    }

    /// <summary>torchvision's BasicBlock with ONNX-style begin-heavy padding on the strided conv.</summary>
    public sealed class BasicBlock : nn.Module<Tensor, Tensor>
    {
        private readonly Conv2d conv1;
        private readonly BatchNorm2d bn1;
        private readonly Conv2d conv2;
        private readonly BatchNorm2d bn2;
        private readonly Sequential? downsample;
        private readonly int _stride;

        public BasicBlock(int inChannels, int outChannels, int stride) : base(nameof(BasicBlock))
        {
            _stride = stride;
            conv1 = nn.Conv2d(inChannels, outChannels, 3, stride: stride, padding: stride == 1 ? 1 : 0, bias: false);
            bn1 = nn.BatchNorm2d(outChannels);
            conv2 = nn.Conv2d(outChannels, outChannels, 3, padding: 1, bias: false);
            bn2 = nn.BatchNorm2d(outChannels);
            if (stride != 1 || inChannels != outChannels)
                downsample = nn.Sequential(nn.Conv2d(inChannels, outChannels, 1, stride: stride, bias: false), nn.BatchNorm2d(outChannels));
            RegisterComponents();
        }

        public override Tensor forward(Tensor input)
        {
            using var scope = NewDisposeScope();
            var x = _stride == 1 ? input : nn.functional.pad(input, [1, 0, 1, 0]);
            var y = nn.functional.relu(bn1.forward(conv1.forward(x)));
            y = bn2.forward(conv2.forward(y));
            var identity = downsample is null ? input : downsample.forward(input);
            return nn.functional.relu(y + identity).MoveToOuterDisposeScope();
        }
    }
}
