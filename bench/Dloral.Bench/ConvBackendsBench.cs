using System.Globalization;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Dloral.Bench;

/// <summary>
/// The compact UNet's 3×3 convolutions (shapes of the shipped model at 720p output) through libtorch's default CPU path
/// (oneDNN, NCHW and channels-last) against NNPACK's Winograd convolution, which libtorch contains but never picks for a
/// batch of one (<c>torch._nnpack_spatial_convolution</c>, reached through TorchScript). Answers whether a Winograd
/// kernel is the way to the speed bar on an AVX2 CPU. Args: [--repeat N] [--threads T].
/// </summary>
internal static class ConvBackendsBench
{
    private const string Script = """
def available() -> Tensor:
    return torch.tensor(torch._nnpack_available())

def nnpack(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    return torch._nnpack_spatial_convolution(x, w, b, [1, 1], [1, 1])

""";

    // (in, out, grid height, grid width, how many convolutions of this shape one UNet pass runs, where): every stride-1
    // 3×3 convolution of the shipped UNet (layers_per_block 2, channels [48, 96, 128]); the two stride-2 downsamplers
    // are left out.
    private static readonly (long In, long Out, long H, long W, int Count, string Where)[] Shapes =
    [
        (96, 48, 180, 320, 3, "conv_in; up block 2 resnets 1–2 conv1"),
        (48, 48, 180, 320, 8, "down block 0; up block 2 conv2; conv_out"),
        (144, 48, 180, 320, 1, "up block 2 resnet 0 conv1"),
        (96, 96, 180, 320, 1, "up block 1 upsampler"),
        (48, 96, 90, 160, 1, "down block 1 resnet 0 conv1"),
        (96, 96, 90, 160, 6, "down block 1; up block 1 conv2"),
        (144, 96, 90, 160, 1, "up block 1 resnet 2 conv1"),
        (192, 96, 90, 160, 1, "up block 1 resnet 1 conv1"),
        (224, 96, 90, 160, 1, "up block 1 resnet 0 conv1"),
        (128, 128, 90, 160, 1, "up block 0 upsampler"),
        (96, 128, 45, 80, 1, "down block 2 resnet 0 conv1"),
        (128, 128, 45, 80, 10, "down block 2; mid block; up block 0 conv2"),
        (224, 128, 45, 80, 1, "up block 0 resnet 2 conv1"),
        (256, 128, 45, 80, 2, "up block 0 resnets 0–1 conv1"),
    ];

    public static int Run(string[] args)
    {
        var (repeat, threads) = BenchUtil.OpBenchSetup(args);
        using var guard = inference_mode();
        using var cu = TorchSharp.torch.jit.compile(Script);
        using (var available = cu.invoke<Tensor>("available"))
            if (!available.item<bool>()) { Console.Error.WriteLine("conv-backends: this libtorch has no NNPACK"); return 1; }
        var md = new System.Text.StringBuilder();
        md.AppendLine($"# 3×3 convolutions of the compact UNet: oneDNN vs NNPACK (Winograd), fp32 ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)");
        md.AppendLine();
        md.AppendLine($"`dotnet run -c Release --project bench/Dloral.Bench -- conv-backends` · cpu: {Dloral.CpuFeatures.Current.Describe()}; threads {threads}; median of {repeat}");
        md.AppendLine();
        md.AppendLine("| conv | grid | × per pass | where | oneDNN NCHW ms | oneDNN channels-last ms | NNPACK ms | NNPACK / best oneDNN | max rel. diff |");
        md.AppendLine("|---|---|---:|---|---:|---:|---:|---:|---:|");
        double best = 0, withNnpack = 0;
        foreach (var (cin, cout, h, w, count, where) in Shapes)
        {
            using var scope = NewDisposeScope();
            var weight = randn(cout, cin, 3, 3) * (1.0 / Math.Sqrt(9 * cin));
            var bias = randn(cout) * 0.1;
            var x = randn(1, cin, h, w);
            var xl = Dloral.Nn.MemoryFormat.ToChannelsLast(x);
            var wl = Dloral.Nn.MemoryFormat.ToChannelsLast(weight);
            double nchw = BenchUtil.MedianMs(() => F.conv2d(x, weight, bias, padding: [1, 1]), repeat);
            double last = BenchUtil.MedianMs(() => F.conv2d(xl, wl, bias, padding: [1, 1]), repeat);
            double nnp = BenchUtil.MedianMs(() => cu.invoke<Tensor>("nnpack", x, weight, bias), repeat);
            var reference = F.conv2d(x, weight, bias, padding: [1, 1]);
            var winograd = cu.invoke<Tensor>("nnpack", x, weight, bias);
            double diff = (reference - winograd).abs().max().item<float>() / reference.abs().max().item<float>();
            double fastest = Math.Min(nchw, last);
            best += count * fastest;
            withNnpack += count * Math.Min(fastest, nnp);
            md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {cin}→{cout} | {h}×{w} | {count} | {where} | {nchw:F1} | {last:F1} | {nnp:F1} | {nnp / fastest:F2} | {diff:E1} |"));
        }
        md.AppendLine();
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"All 3×3 convolutions of one pass: {best:F0} ms with the faster oneDNN layout per shape, {withNnpack:F0} ms taking NNPACK where it wins (×{best / withNnpack:F2}, before any layout conversion it would need)."));
        BenchUtil.WriteMarkdown("conv-backends", md.ToString());
        return 0;
    }
}
