using Dloral.Metrics;
using Dloral.Tests.Support;
using Microsoft.ML.OnnxRuntime;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Tests.Metrics;

public class ResNet18ImportTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static string ModelPath => ResNet18OnnxImporter.FindModel()
        ?? throw new FileNotFoundException("ResNet18.onnx was not copied next to the tests (build/ResNet18Onnx.targets)");

    [Fact]
    public void TorchSharp_import_matches_onnxruntime_on_the_same_input()
    {
        using var scope = NewDisposeScope();
        // A natural-ish image rather than noise, so activations are in their usual range.
        var rgb = TestImages.Texture(224, 224).unsqueeze(0);
        var input = ResNet18.Preprocess(rgb).contiguous();

        using var net = ResNet18OnnxImporter.Load(ModelPath);
        Tensor ours;
        using (inference_mode())
            ours = nn.functional.avg_pool2d(net.forward(input), 7, 1).flatten();

        using var session = new InferenceSession(ModelPath);
        var data = input.data<float>().ToArray();
        var ortInput = new DenseTensor(data, [1, 3, 224, 224]);
        using var outputs = session.Run([NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.Single(), ortInput)]);
        var reference = outputs.Single().AsEnumerable<float>().ToArray();
        Assert.Equal(512, reference.Length);

        var refTensor = tensor(reference);
        double maxAbs = TensorAssert.MaxAbsDiff(refTensor, ours);
        Assert.True(refTensor.abs().max().item<float>() > 0.1, "reference features are degenerate");
        output.WriteLine($"max |TorchSharp - OnnxRuntime| = {maxAbs:G3}, max |ref| = {refTensor.abs().max().item<float>():G4}");
        Assert.True(maxAbs < 1e-4, $"max |TorchSharp − OnnxRuntime| = {maxAbs:G3}");
    }

    [Fact]
    public void Feature_distance_is_zero_for_identical_images_and_grows_with_degradation()
    {
        using var scope = NewDisposeScope();
        using var metric = ResNet18FeatureDistance.Load(ModelPath);
        var img = TestImages.Texture(96, 128);
        using var g = new Generator(5);
        var noise = randn([3, 96, 128], generator: g);
        Assert.Equal(0.0, metric.Distance(img, img.clone()), 9);
        double light = metric.Distance((img + noise * 0.02).clamp(0, 1), img);
        double heavy = metric.Distance((img + noise * 0.1).clamp(0, 1), img);
        output.WriteLine($"resnet18_feature_distance: noise 0.02 -> {light:G4}, noise 0.1 -> {heavy:G4}");
        Assert.True(light > 0 && heavy > light, $"light {light}, heavy {heavy}");
        Assert.Equal(light, metric.Distance(img, (img + noise * 0.02).clamp(0, 1)), 5); // symmetric
        // Sizes whose stages become odd (1080 rows → 135 → 67 vs 68 in the export's padding) still work.
        var odd = TestImages.Texture(108, 100);
        Assert.True(metric.Distance(odd, (odd + 0.05f).clamp(0, 1)) > 0);
        Assert.Throws<ArgumentException>(() => metric.Distance(zeros(3, 20, 40), zeros(3, 20, 40)));
    }

    [Fact]
    public void A_file_that_is_not_onnx_gives_a_clear_error()
    {
        var path = Path.Combine(Path.GetTempPath(), $"not-onnx-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, [0x0a, 0xff, 0xff, 0xff, 0x0f, 1, 2]);
        try
        {
            var ex = Assert.Throws<InvalidDataException>(() => ResNet18OnnxImporter.Load(path));
            Assert.Contains(path, ex.Message);
        }
        finally { File.Delete(path); }
    }
}
