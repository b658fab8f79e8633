using System.Globalization;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Dloral.Bench;

/// <summary>
/// Op-level timing of the compact UNet's building blocks at the shipped model's shapes (720p output: 180×320 LR grid,
/// 48/96/128 channels at 1/1, 1/2, 1/4 of it): 3×3 convolutions, GroupNorm, SiLU and adds, NCHW vs channels-last,
/// fp32. Shows whether the convolutions or the memory-bound element-wise ops take the time on this CPU.
/// Args: [--repeat N] [--threads T].
/// </summary>
internal static class UnetOpsBench
{
    public static int Run(string[] args)
    {
        var (repeat, threads) = BenchUtil.OpBenchSetup(args);
        using var guard = inference_mode();
        var md = new System.Text.StringBuilder();
        md.AppendLine($"# Compact UNet building blocks at 720p-output shapes, fp32 ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)");
        md.AppendLine();
        md.AppendLine($"cpu: {Dloral.CpuFeatures.Current.Describe()}; threads {threads}; median of {repeat}");
        md.AppendLine("| op | shape | NCHW ms | channels-last ms | GFLOP/s (best) |");
        md.AppendLine("|---|---|---:|---:|---:|");
        foreach (var (c, h, w) in new[] { (48L, 180L, 320L), (96L, 90L, 160L), (128L, 45L, 80L) })
        {
            foreach (var (cin, cout, k) in new[] { (c, c, 3L), (2 * c, c, 3L), (3 * c, c, 3L) })
            {
                if (cin == 3 * c && c == 128) continue;
                using var weight = randn(cout, cin, k, k) * 0.05;
                using var weightLast = Dloral.Nn.MemoryFormat.ToChannelsLast(weight);
                using var bias = zeros(cout);
                double flops = 2.0 * cout * cin * k * k * h * w;
                var (a, b) = Both(cin, h, w, x => F.conv2d(x, Dloral.Nn.MemoryFormat.IsChannelsLast(x) ? weightLast : weight, bias, padding: [k / 2, k / 2]), repeat);
                md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| conv {cin}→{cout} {k}×{k} | {h}×{w} | {a:F1} | {b:F1} | {flops / Math.Min(a, b) / 1e6:F1} |"));
            }
            using var gw = ones(c); using var gb = zeros(c);
            var (g1, g2) = Both(c, h, w, x => F.group_norm(x, 16, gw, gb, 1e-5), repeat);
            md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| group_norm 16 | {c}×{h}×{w} | {g1:F1} | {g2:F1} | |"));
            var (s1, s2) = Both(c, h, w, x => F.silu(x), repeat);
            md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| silu | {c}×{h}×{w} | {s1:F1} | {s2:F1} | |"));
            var (a1, a2) = Both(c, h, w, x => x + x, repeat);
            md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| add | {c}×{h}×{w} | {a1:F1} | {a2:F1} | |"));
            var (c1, c2) = Both(c, h, w, x => cat([x, x], 1), repeat);
            md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| cat ×2 | {c}×{h}×{w} | {c1:F1} | {c2:F1} | |"));
        }
        // The lossless codec at 720p (its mixing is one 48×48 1×1 conv since 2026-11-27; before, separable einsums took
        // 27.8 ms to encode and 29.2 to decode on the AVX2 machine) against the pixel (un)shuffle alone, its floor.
        using (var codec = new Dloral.Pipeline.Codecs.PixelUnshuffleCodec(4))
        {
            using var image = rand(1, 3, 720, 1280) * 2 - 1;
            using var latent = codec.Encode(image);
            md.AppendLine();
            md.AppendLine("| lossless codec f=4 at 1280×720 | codec ms | pixel (un)shuffle alone ms |");
            md.AppendLine("|---|---:|---:|");
            md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| encode | {BenchUtil.MedianMs(() => codec.Encode(image), repeat):F1} | {BenchUtil.MedianMs(() => F.pixel_unshuffle(image, 4), repeat):F1} |"));
            md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| decode | {BenchUtil.MedianMs(() => codec.Decode(latent), repeat):F1} | {BenchUtil.MedianMs(() => F.pixel_shuffle(latent, 4), repeat):F1} |"));
        }
        BenchUtil.WriteMarkdown("unet-ops", md.ToString());
        return 0;
    }

    private static (double Nchw, double ChannelsLast) Both(long c, long h, long w, Func<Tensor, Tensor> op, int repeat)
    {
        using var x = randn(1, c, h, w);
        using var xl = Dloral.Nn.MemoryFormat.ToChannelsLast(x);
        return (BenchUtil.MedianMs(() => op(x), repeat), BenchUtil.MedianMs(() => op(xl), repeat));
    }
}
