using System.Text.Json;
using Dloral.Cli;
using Dloral.Tests.Support;

namespace Dloral.Tests.Metrics;

public class EvalCommandTests
{
    private static async Task<(int Code, string Out, string Err)> Dloral(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = await Program.RunAsync(args, CliConsole.Capture(o, e));
        return (code, o.ToString(), e.ToString());
    }

    /// <summary>Lossless clips: ground truth, its ×2 area downscale, and a noisy version.</summary>
    private static (string Gt, string Lr, string Noisy) Clips(TestMedia media, int frames = 4)
    {
        string gt = media.PathOf("gt.mkv"), lr = media.PathOf("lr.mkv"), noisy = media.PathOf("noisy.mkv");
        TestMedia.Ffmpeg("-f", "lavfi", "-i", "testsrc2=s=96x64:r=25", "-frames:v", frames.ToString(System.Globalization.CultureInfo.InvariantCulture), "-c:v", "ffv1", gt);
        TestMedia.Ffmpeg("-i", gt, "-vf", "scale=48:32:flags=area", "-c:v", "ffv1", lr);
        TestMedia.Ffmpeg("-i", gt, "-vf", "noise=alls=10:allf=t", "-c:v", "ffv1", noisy);
        return (gt, lr, noisy);
    }

    [Fact]
    public async Task Eval_writes_a_complete_report_for_real_videos()
    {
        using var media = new TestMedia();
        var (gt, lr, noisy) = Clips(media);
        string dir = media.PathOf("report");
        var (code, stdout, stderr) = await Dloral("eval", noisy, gt, "--gt", gt, "--lr", lr, "-o", dir, "--crop-size", "32");
        Assert.True(code == 0, stderr);
        Assert.Contains("gt.mkv: psnr_y=inf", stdout);

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "report.json")));
        var root = json.RootElement;
        Assert.Equal(2, root.GetProperty("scale").GetInt32()); // inferred from 96x64 vs 48x32
        Assert.Equal(4, root.GetProperty("frames").GetInt32());
        var rows = root.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(["bicubic", "noisy.mkv", "gt.mkv"], rows.Select(r => r.GetProperty("name").GetString()));
        Assert.True(rows[2].GetProperty("clip").GetProperty("identical").GetBoolean());
        double noisyPsnr = rows[1].GetProperty("clip").GetProperty("psnr_y").GetDouble();
        Assert.InRange(noisyPsnr, 25, 45);
        Assert.True(rows[1].GetProperty("clip").GetProperty("warping_error").GetDouble() > rows[2].GetProperty("clip").GetProperty("warping_error").GetDouble());
        Assert.Equal(4, rows[1].GetProperty("per_frame").GetArrayLength());
        Assert.True(File.Exists(Path.Combine(dir, "report.md")));
        Assert.True(File.Exists(Path.Combine(dir, "plots", "psnr_y.svg")));
        Assert.Equal(3, Directory.GetFiles(Path.Combine(dir, "crops"), "*.png").Length);
    }

    [Fact]
    public async Task Eval_rejects_mismatched_inputs_with_exit_code_2_and_names_the_files()
    {
        using var media = new TestMedia();
        var (gt, _, _) = Clips(media);
        string shortClip = media.PathOf("short.mkv");
        TestMedia.Ffmpeg("-i", gt, "-frames:v", "3", "-c:v", "ffv1", shortClip);
        var (code, _, stderr) = await Dloral("eval", shortClip, "--gt", gt, "-o", media.PathOf("r1"), "--no-feature-distance", "--no-temporal");
        Assert.Equal(2, code);
        Assert.Contains("frame count mismatch", stderr);
        Assert.Contains("short.mkv has 3", stderr);
        Assert.Contains("gt.mkv has 4", stderr);

        string small = media.PathOf("small.mkv");
        TestMedia.Ffmpeg("-i", gt, "-vf", "scale=80:64", "-c:v", "ffv1", small);
        (code, _, stderr) = await Dloral("eval", small, "--gt", gt, "-o", media.PathOf("r2"), "--no-feature-distance", "--no-temporal");
        Assert.Equal(2, code);
        Assert.Contains("small.mkv is 80x64", stderr);
        Assert.Contains("gt.mkv is 96x64", stderr);

        (code, _, stderr) = await Dloral("eval", media.PathOf("missing.mp4"), "-o", media.PathOf("r3"));
        Assert.Equal(2, code);
        Assert.Contains("missing.mp4", stderr);
    }

    [Fact]
    public async Task Eval_uses_spynet_when_weights_are_given()
    {
        using var media = new TestMedia();
        var (gt, _, noisy) = Clips(media, frames: 3);
        string dir = media.PathOf("report");
        var (code, _, stderr) = await Dloral("eval", noisy, "--gt", gt, "-o", dir, "--no-feature-distance",
            "--spynet", GoldenData.PathOf("cfr", "weights.safetensors"), "--spynet-input", "signed");
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "report.json")));
        Assert.StartsWith("SPyNet", json.RootElement.GetProperty("flow_estimator").GetString());
        var clip = json.RootElement.GetProperty("rows")[0].GetProperty("clip");
        Assert.Equal(JsonValueKind.Number, clip.GetProperty("tof").ValueKind);
        // The golden SPyNet weights are random: its flows fail the forward-backward check almost everywhere,
        // so the warping error may have no valid pixel (null) — but the key is there.
        Assert.True(clip.TryGetProperty("warping_error", out _));

        (code, _, stderr) = await Dloral("eval", noisy, "-o", media.PathOf("r2"), "--spynet", gt);
        Assert.Equal(2, code);
        Assert.Contains("gt.mkv", stderr);
    }

    [Theory]
    [InlineData("side-by-side", 192)]
    [InlineData("split", 96)]
    public async Task Compare_writes_a_video_of_both_results(string mode, int expectedWidth)
    {
        using var media = new TestMedia();
        var (gt, _, noisy) = Clips(media, frames: 3);
        string output = media.PathOf($"cmp-{mode}.mp4");
        var (code, _, stderr) = await Dloral("compare", gt, noisy, "-o", output, "--mode", mode);
        Assert.True(code == 0, stderr);
        var stream = TestMedia.FirstStream(output, "video");
        Assert.Equal(expectedWidth, stream.GetProperty("width").GetInt32());
        Assert.Equal(64, stream.GetProperty("height").GetInt32());
        Assert.Equal("3", stream.GetProperty("nb_frames").GetString());
    }
}
