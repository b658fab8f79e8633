using System.Globalization;
using Dloral.Nn;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Dloral.Bench;

/// <summary>
/// The compact UNet's upsamplers (nearest ×2 then a 3×3 conv) at the shipped model's shapes, channels-last fp32: the
/// two-step form against two exact low-resolution forms: four 2×2 phase kernels as one convolution plus an interleave
/// (tried first), and the stride-2 4×4 transposed convolution <see cref="NearestUpsampleConv"/> uses.
/// Args: [--repeat N] [--threads T].
/// </summary>
internal static class UpsampleConvBench
{
    public static int Run(string[] args)
    {
        var (repeat, threads) = BenchUtil.OpBenchSetup(args);
        using var guard = inference_mode();
        var md = new System.Text.StringBuilder();
        md.AppendLine($"# Nearest ×2 + 3×3 conv at 720p-output shapes, channels-last fp32 ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)");
        md.AppendLine();
        md.AppendLine($"cpu: {Dloral.CpuFeatures.Current.Describe()}; threads {threads}; median of {repeat}");
        md.AppendLine("| input | two-step ms | phase kernels ms | transposed (used) ms | max difference |");
        md.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var (c, h, w) in new[] { (128L, 45L, 80L), (96L, 90L, 160L) })
        {
            using var x = MemoryFormat.ToChannelsLast(randn(1, c, h, w));
            using var weight = MemoryFormat.ToChannelsLast(randn(c, c, 3, 3) * 0.05);
            using var bias = randn(c) * 0.1;
            Tensor TwoStep() => F.conv2d(F.interpolate(x, size: [2 * h, 2 * w], mode: InterpolationMode.Nearest), weight, bias, padding: [1, 1]);
            double diff;
            using (var a = TwoStep()) using (var b = Phases(x, weight, bias)) using (var t = NearestUpsampleConv.Forward(x, weight, bias))
                diff = Math.Max((a - b).abs().max().item<float>(), (a - t).abs().max().item<float>());
            double two = BenchUtil.MedianMs(TwoStep, repeat);
            double phases = BenchUtil.MedianMs(() => Phases(x, weight, bias), repeat);
            double transposed = BenchUtil.MedianMs(() => NearestUpsampleConv.Forward(x, weight, bias), repeat);
            md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {c}×{h}×{w} | {two:F1} | {phases:F1} | {transposed:F1} | {diff:E1} |"));
        }
        BenchUtil.WriteMarkdown("upsample-conv", md.ToString());
        return 0;
    }

    /// <summary>
    /// The phase-kernel form: output phase (a, b) of row/column parity a, b is a 2×2 convolution of the input padded by
    /// one, at offset (a, b); all four as one convolution with 4·O outputs, then interleaved.
    /// </summary>
    private static Tensor Phases(Tensor x, Tensor weight, Tensor? bias)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0], h = x.shape[2], w = x.shape[3], o = weight.shape[0], i = weight.shape[1];
        // Along one axis phase 0 folds the taps as (k0, k1+k2), phase 1 as (k0+k1, k2).
        var fold = tensor(new float[] { 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1 }, [2, 2, 3]);
        var kernels = MemoryFormat.ToChannelsLast(einsum("akh,blw,oihw->aboikl", fold, fold, weight).reshape(4 * o, i, 2, 2));
        var padded = MemoryFormat.ToChannelsLast(F.pad(x, [1, 1, 1, 1], TorchSharp.PaddingModes.Constant, 0));
        var y = F.conv2d(padded, kernels, bias?.repeat(4)).permute(0, 2, 3, 1).reshape(n, h + 1, w + 1, 2, 2, o);
        var output = empty([n, h, 2, w, 2, o]);
        for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            output.select(4, b).select(2, a).copy_(y.select(4, b).select(3, a).narrow(1, a, h).narrow(2, b, w));
        return output.view(n, 2 * h, 2 * w, o).permute(0, 3, 1, 2).MoveToOuterDisposeScope();
    }
}
