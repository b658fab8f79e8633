using System.Text.Json;
using System.Xml.Linq;
using Dloral.Metrics;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Tests.Metrics;

public class EvalReportTests
{
    /// <summary>A pan over a texture: frame t starts 2·t pixels to the right.</summary>
    private static Tensor[] Pan(int frames, int h = 64, int w = 96)
    {
        var big = TestImages.Texture(h, w + 2 * frames);
        return Enumerable.Range(0, frames).Select(t => big[.., .., (2 * t)..(2 * t + w)].contiguous()).ToArray();
    }

    private static EvalInput Input(string name, Func<Tensor[]> frames) =>
        new(name, $"/data/{name}", () => frames().Select(f => f.clone()), frames().Length);

    private static string TempDir() => Directory.CreateTempSubdirectory("dloral-eval-").FullName;

    [Fact]
    public void Report_files_are_produced_and_well_formed()
    {
        var gt = Pan(5);
        using var g = new Generator(9);
        var noisy = gt.Select(f => (f + randn(f.shape, generator: g) * 0.03).clamp(0, 1)).ToArray();
        var lr = gt.Select(f => nn.functional.avg_pool2d(f.unsqueeze(0), 2).squeeze(0)).ToArray();
        var dir = TempDir();
        try
        {
            using var report = VideoEvaluator.Evaluate(
                [Input("noisy.mp4", () => noisy), Input("perfect.mp4", () => gt)],
                Input("gt.mp4", () => gt), Input("lr.mp4", () => lr), new EvalOptions { CropSize = 32 });
            Assert.Equal(2, report.Scale);
            var files = ReportWriter.Write(report, dir);

            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "report.json")));
            var root = json.RootElement;
            Assert.Equal(5, root.GetProperty("frames").GetInt32());
            var rows = root.GetProperty("rows").EnumerateArray().ToList();
            Assert.Equal(["bicubic", "noisy.mp4", "perfect.mp4"], rows.Select(r => r.GetProperty("name").GetString()));

            var perfect = rows[2].GetProperty("clip");
            Assert.Equal(JsonValueKind.Null, perfect.GetProperty("psnr_y").ValueKind);
            Assert.True(perfect.GetProperty("identical").GetBoolean());
            Assert.Equal(1.0, perfect.GetProperty("ssim_y").GetDouble(), 9);
            Assert.Equal(0.0, perfect.GetProperty("resnet18_feature_distance").GetDouble(), 6);
            Assert.Equal(0.0, perfect.GetProperty("tof").GetDouble(), 6);

            var noisyClip = rows[1].GetProperty("clip");
            double psnr = noisyClip.GetProperty("psnr_rgb").GetDouble();
            Assert.InRange(psnr, 29.5, 31.5); // σ = 0.03 → 30.46 dB, a little higher where clamping bites
            Assert.False(noisyClip.GetProperty("identical").GetBoolean());
            // Independent noise per frame is temporal instability: a higher warping error than the clean pan.
            Assert.True(noisyClip.GetProperty("warping_error").GetDouble() > 5 * perfect.GetProperty("warping_error").GetDouble());
            Assert.True(rows[0].GetProperty("clip").GetProperty("psnr_y").GetDouble() > 20);

            var frames = rows[1].GetProperty("per_frame").EnumerateArray().ToList();
            Assert.Equal(5, frames.Count);
            Assert.Equal(JsonValueKind.Null, frames[0].GetProperty("warping_error").ValueKind); // no previous frame
            Assert.Equal(JsonValueKind.Number, frames[1].GetProperty("warping_error").ValueKind);
            Assert.Contains("Lucas-Kanade", root.GetProperty("flow_estimator").GetString());

            var md = File.ReadAllText(Path.Combine(dir, "report.md"));
            Assert.Contains("| noisy.mp4 |", md);
            Assert.Contains("No-reference indicators (not quality scores)", md);
            Assert.DoesNotContain("LPIPS |", md);

            var svgs = Directory.GetFiles(Path.Combine(dir, "plots"), "*.svg");
            Assert.Contains(svgs, p => p.EndsWith("psnr_y.svg", StringComparison.Ordinal));
            Assert.Contains(svgs, p => p.EndsWith("warping_error.svg", StringComparison.Ordinal));
            foreach (var svg in svgs)
            {
                var doc = XDocument.Load(svg);
                Assert.Equal("svg", doc.Root!.Name.LocalName);
                Assert.Contains(doc.Descendants(), e => e.Name.LocalName == "polyline");
                Assert.Contains($"plots/{Path.GetFileName(svg)}", md);
            }

            var pngs = Directory.GetFiles(Path.Combine(dir, "crops"), "*.png");
            Assert.Equal(3, pngs.Length); // first, middle and last frame
            foreach (var png in pngs)
            {
                using var bmp = SKBitmap.Decode(png);
                Assert.NotNull(bmp);
                Assert.Equal(4 * 256 + 3 * 4, bmp.Width); // bicubic | noisy | perfect | ground truth, 32 px zoomed ×8
                Assert.Contains($"crops/{Path.GetFileName(png)}", md);
            }
            Assert.All(files, f => Assert.True(File.Exists(f), f));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Without_ground_truth_only_no_reference_and_self_flow_temporal_metrics_are_reported()
    {
        var gt = Pan(3);
        using var report = VideoEvaluator.Evaluate([Input("a.mp4", () => gt)], null, null, new EvalOptions());
        var row = report.Rows.Single();
        Assert.False(row.Has(MetricKeys.PsnrY));
        Assert.False(row.Has(MetricKeys.Tof));
        Assert.True(row.Has(MetricKeys.GradientEnergy));
        Assert.True(row.Clip(MetricKeys.WarpingError) < 3, $"warping error x1e-3 of a clean pan: {row.Clip(MetricKeys.WarpingError)}");
        Assert.Equal("each result", report.FlowSource);
        Assert.Equal(4, report.Scale);
    }

    [Fact]
    public void Evaluation_leaves_no_live_tensors_behind()
    {
        var gt = Pan(4);
        var lr = gt.Select(f => nn.functional.avg_pool2d(f.unsqueeze(0), 2).squeeze(0)).ToArray();
        var result = gt.Select(f => (f * 0.9f).contiguous()).ToArray();
        var options = new EvalOptions { FeatureDistance = false, CropSize = 16 };
        // Warm up lazily created state, then compare live counts around a full evaluation.
        VideoEvaluator.Evaluate([Input("r.mp4", () => result)], Input("gt.mp4", () => gt), Input("lr.mp4", () => lr), options).Dispose();
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        VideoEvaluator.Evaluate([Input("r.mp4", () => result)], Input("gt.mp4", () => gt), Input("lr.mp4", () => lr), options).Dispose();
        long after = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Assert.True(after <= before, $"live tensors: {before} before, {after} after");
    }

    [Fact]
    public void Frame_count_mismatch_names_the_files_and_counts()
    {
        var gt = Pan(5);
        var ex = Assert.Throws<EvalInputException>(() => VideoEvaluator.Evaluate(
            [Input("short.mp4", () => gt[..3])], Input("gt.mp4", () => gt), null, new EvalOptions { FeatureDistance = false }));
        Assert.Contains("frame count mismatch", ex.Message);
        Assert.Contains("/data/gt.mp4 has 5", ex.Message);
        Assert.Contains("/data/short.mp4 has 3", ex.Message);
    }

    [Fact]
    public void Frame_size_mismatch_names_the_files_and_sizes()
    {
        var gt = Pan(2);
        var small = Pan(2, 64, 90);
        var ex = Assert.Throws<EvalInputException>(() => VideoEvaluator.Evaluate(
            [Input("small.mp4", () => small)], Input("gt.mp4", () => gt), null, new EvalOptions { FeatureDistance = false }));
        Assert.Contains("/data/small.mp4 is 90x64", ex.Message);
        Assert.Contains("/data/gt.mp4 is 96x64", ex.Message);

        var lr = gt.Select(f => f[.., ..31, ..48].contiguous()).ToArray(); // 48x31: not a multiple of 96x64
        var ex2 = Assert.Throws<EvalInputException>(() => VideoEvaluator.Evaluate(
            [Input("a.mp4", () => gt)], Input("gt.mp4", () => gt), Input("lr.mp4", () => lr), new EvalOptions { FeatureDistance = false }));
        Assert.Contains("/data/lr.mp4", ex2.Message);
    }
}
