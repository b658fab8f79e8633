using System.Globalization;
using System.Text;
using Dloral.Checkpoints;
using Dloral.Pipeline;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Bench;

/// <summary>
/// How close our bicubic/lanczos are to ffmpeg's swscale (<c>-vf scale=iw*4:ih*4:flags=...</c>, rgb24
/// in and out) and to Pillow (golden data), in 8-bit levels, whole image and interior (edges differ
/// by design: each library pads differently).
/// </summary>
internal static class BaselinesBench
{
    private sealed record Row(string Image, string Ours, string Reference, double Mean, int Max, double InteriorMean, int InteriorMax);

    public static int Run(string[] args)
    {
        Dloral.TorchRuntime.Initialize();
        var rows = new List<Row>();
        var images = new List<(string Name, byte[] Rgb, int W, int H)>
        {
            ("testsrc2 160x120", Ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=1", "-frames:v", "1"), 160, 120),
            ("mandelbrot 160x120", Ffmpeg("-f", "lavfi", "-i", "mandelbrot=size=160x120:rate=1", "-frames:v", "1"), 160, 120),
        };
        var goldenRoot = Environment.GetEnvironmentVariable("DLORAL_GOLDEN") is { Length: > 0 } g ? g : Path.Combine(BenchUtil.RepoRoot, "..", "shared", "golden");
        if (!Directory.Exists(goldenRoot)) goldenRoot = "/work/shared/golden";
        var golden = Path.Combine(goldenRoot, "pipeline_bits", "case_pipeline_bits.safetensors");
        byte[]? pilBicubic = null;
        if (File.Exists(golden))
        {
            using var f = SafeTensorsFile.Open(golden);
            using var lq = f.Load("resize.in.lq_u8");
            images.Add(("golden noise 15x12", lq.data<byte>().ToArray(), 15, 12));
            using var pb = f.Load("resize.out.bicubic_x4_u8");
            pilBicubic = pb.data<byte>().ToArray();
            // Pillow LANCZOS shrinking 60x48 -> 56x48 (the golden case; Pillow widens the kernel to antialias).
            using var pl = f.Load("resize.out.lanczos_60x48_to_56x48_u8");
            var ours = Ours(pilBicubic, 60, 48, t => LanczosUpscaler.Resize(t, 48, 56));
            var (m, x) = Diff(ours, pl.data<byte>().ToArray(), 56, 48, 0);
            rows.Add(new Row("golden 60x48 -> 56x48", "lanczos (ours, a=3)", "Pillow LANCZOS (golden)", m, x, m, x));
        }

        foreach (var (name, rgb, w, h) in images)
        {
            var ours = new Dictionary<string, byte[]>
            {
                ["bicubic (torch, a=-0.75)"] = Ours(rgb, w, h, t => BicubicUpscaler.Resize(t, 4)),
                ["lanczos (ours, a=3)"] = Ours(rgb, w, h, t => LanczosUpscaler.Resize(t, h * 4, w * 4)),
                ["cubic a=-0.5 (Pillow kernel, float)"] = Ours(rgb, w, h, t => Kernel(t, h, w, ResampleKernel.Cubic(-0.5))),
                ["cubic a=-0.6 (swscale default param)"] = Ours(rgb, w, h, t => Kernel(t, h, w, ResampleKernel.Cubic(-0.6))),
            };
            var refs = new Dictionary<string, byte[]>
            {
                ["ffmpeg flags=bicubic"] = Swscale(rgb, w, h, "bicubic"),
                ["ffmpeg flags=lanczos"] = Swscale(rgb, w, h, "lanczos"),
            };
            if (name.StartsWith("golden", StringComparison.Ordinal) && pilBicubic is not null) refs["Pillow BICUBIC (golden)"] = pilBicubic;
            foreach (var (oName, o) in ours)
                foreach (var (rName, r) in refs)
                {
                    var (mean, max) = Diff(o, r, w * 4, h * 4, 0);
                    var (imean, imax) = Diff(o, r, w * 4, h * 4, Math.Min(12, Math.Min(w, h)));
                    rows.Add(new Row(name, oName, rName, mean, max, imean, imax));
                }
        }

        var md = new StringBuilder();
        md.AppendLine("# Baselines vs ffmpeg swscale and Pillow (x4, rgb24, 8-bit levels)");
        md.AppendLine();
        md.AppendLine("Interior = excluding a 12-pixel output border (3 input pixels), where edge padding differs.");
        md.AppendLine("ffmpeg: `ffmpeg -f rawvideo -pix_fmt rgb24 ... -vf scale=iw*4:ih*4:flags=F -pix_fmt rgb24` (adding +accurate_rnd+full_chroma_int+full_chroma_inp changed nothing here).");
        md.AppendLine();
        md.AppendLine("| image | ours | reference | mean | max | interior mean | interior max |");
        md.AppendLine("| --- | --- | --- | --- | --- | --- | --- |");
        foreach (var r in rows)
            md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {r.Image} | {r.Ours} | {r.Reference} | {r.Mean:F2} | {r.Max} | {r.InteriorMean:F2} | {r.InteriorMax} |"));
        BenchUtil.WriteResults("baselines", rows, md.ToString());
        return 0;
    }

    private static byte[] Ffmpeg(params string[] input) =>
        BenchUtil.Run("ffmpeg", ["-v", "error", .. input, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]);

    private static byte[] Swscale(byte[] rgb, int w, int h, string flags) =>
        BenchUtil.Run("ffmpeg", ["-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", $"{w}x{h}", "-i", "-",
            "-vf", $"scale=iw*4:ih*4:flags={flags}", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], rgb);

    private static Tensor Kernel(Tensor t, int h, int w, ResampleKernel k) =>
        SeparableResampler.Apply(t, SeparableResampler.Banded(h, h * 4, k), SeparableResampler.Banded(w, w * 4, k));

    private static byte[] Ours(byte[] rgb, int w, int h, Func<Tensor, Tensor> resize)
    {
        using var scope = NewDisposeScope();
        var chw = torch.tensor(rgb, new long[] { h, w, 3 }).permute(2, 0, 1).to_type(ScalarType.Float32).div_(255f);
        var y = resize(chw).clamp(0, 1).mul(255f).round().to_type(ScalarType.Byte).permute(1, 2, 0).contiguous();
        return y.data<byte>().ToArray();
    }

    private static (double Mean, int Max) Diff(byte[] a, byte[] b, int w, int h, int border)
    {
        if (a.Length != b.Length) throw new InvalidOperationException($"sizes differ: {a.Length} vs {b.Length}");
        long sum = 0, n = 0; int max = 0;
        for (int y = border; y < h - border; y++)
            for (int x = border; x < w - border; x++)
                for (int c = 0; c < 3; c++)
                {
                    int i = (y * w + x) * 3 + c;
                    int d = Math.Abs(a[i] - b[i]);
                    sum += d; n++; max = Math.Max(max, d);
                }
        return ((double)sum / Math.Max(1, n), max);
    }
}
