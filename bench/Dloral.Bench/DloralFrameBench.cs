using TorchSharp;
using System.Diagnostics;
using System.Globalization;
using Dloral.Diffusion;
using Dloral.Lora;
using Dloral.Nn;
using Dloral.Pipeline;
using Dloral.Temporal;
using static TorchSharp.torch;

namespace Dloral.Bench;

/// <summary>
/// Seconds per output frame and peak memory of the DLoRAL video pipeline with the FULL-SIZE SD 2.1-base architecture
/// (random weights, six rank-4 adapters, CFR), split by stage.
/// Usage: <c>Dloral.Bench dloral-frame [fp32|bf16] [--size 512x512] [--frames N] [--threads N] [--merge] [--no-cache]</c>
/// (--size is the OUTPUT size; the input is size/4). One configuration per process so VmHWM is that run's peak.
/// Appends one JSON line to bench/results/dloral-frame.jsonl.
/// </summary>
public static class DloralFrameBench
{
    public static int Run(string[] args)
    {
        var dtype = args.Contains("bf16") ? ScalarType.BFloat16 : ScalarType.Float32;
        var size = (Arg(args, "--size") ?? "512x512").Split('x').Select(int.Parse).ToArray();
        int width = size[0], height = size[1];
        int frames = int.Parse(Arg(args, "--frames") ?? "3", CultureInfo.InvariantCulture);
        int threads = int.Parse(Arg(args, "--threads") ?? "2", CultureInfo.InvariantCulture);
        bool merge = args.Contains("--merge"), noCache = args.Contains("--no-cache");
        string golden = Arg(args, "--golden") ?? FindGolden();
        TorchRuntime.Initialize(threads);
        string load0 = File.ReadAllText("/proc/loadavg").Split(' ')[0];
        Console.WriteLine($"dloral-frame {dtype} out {width}x{height} frames={frames} threads={threads} merge={merge} cache={!noCache} load={load0}");

        var clock = Stopwatch.StartNew();
        var options = new ModelOptions(DType: dtype);
        var unet = new UNet2DCondition(Config(golden, "unet_config.json", UNet2DConditionConfig.FromJson), options);
        DloralUnet.Prepare(unet);
        var vae = new AutoencoderKL(Config(golden, "vae_config.json", AutoencoderKLConfig.FromJson), options);
        var cfr = new CrossFrameRetrieval();
        if (dtype != ScalarType.Float32) cfr.to(dtype);
        var model = new DloralModel(vae, unet, cfr);
        Console.WriteLine($"  build {clock.Elapsed.TotalSeconds:F1} s, RSS {Rss("VmRSS"):F2} GB");

        using var gen = new Generator(1);
        var video = new DloralVideoOptions { Scale = 4, DType = dtype, Adapters = new DloralAdapterOptions(MergeAdapters: merge) };
        using var upscaler = new DloralUpscaler(model, randn([1, 77, 1024], generator: gen), video) { CacheLatents = !noCache };
        // Smooth moving content (a random field upsampled, shifted by one pixel per frame).
        using var field = nn.functional.interpolate(rand([1, 3, height / 16 + 8, width / 16 + 8], generator: gen),
            size: [height / 4 + 8 * 4, width / 4 + 8 * 4], mode: InterpolationMode.Bicubic, align_corners: false).clamp(0, 1);
        var inputs = Enumerable.Range(0, frames).Select(i => field[0].narrow(1, i, height / 4).narrow(2, i, width / 4).contiguous()).ToList();

        var perFrame = new List<double>();
        using (var mode = inference_mode())
        {
            for (int n = 0; n < frames; n++)
            {
                int from = Math.Max(0, n - upscaler.FramesBefore), to = Math.Min(frames - 1, n + upscaler.FramesAfter);
                var window = new FrameWindow(inputs.Skip(from).Take(to - from + 1).ToList(), n - from, n, n == 0);
                var t = Stopwatch.StartNew();
                using var result = upscaler.Upscale(window);
                perFrame.Add(t.Elapsed.TotalSeconds);
                Console.WriteLine($"  frame {n}: {perFrame[^1]:F1} s [{string.Join("x", result.shape)}] RSS {Rss("VmRSS"):F2} GB");
            }
        }
        var tm = upscaler.Timings;
        double f = tm.Frames;
        string load1 = File.ReadAllText("/proc/loadavg").Split(' ')[0];
        // Frame 0 encodes two frames (it borrows frame 1 as neighbour); later frames one each.
        double steady = perFrame.Count > 1 ? perFrame.Skip(1).Average() : perFrame[0];
        string line = string.Create(CultureInfo.InvariantCulture,
            $"{{\"dtype\":\"{dtype}\",\"out\":\"{width}x{height}\",\"frames\":{frames},\"threads\":{threads},\"merge\":{merge.ToString().ToLowerInvariant()},\"cache\":{(!noCache).ToString().ToLowerInvariant()}," +
            $"\"s_per_frame_steady\":{steady:F2},\"s_per_frame\":[{string.Join(",", perFrame.Select(p => p.ToString("F2", CultureInfo.InvariantCulture)))}]," +
            $"\"stage_s_per_frame\":{{\"prepare\":{tm.Prepare.TotalSeconds / f:F2},\"vae_encode\":{tm.VaeEncode.TotalSeconds / f:F2},\"cfr\":{tm.Cfr.TotalSeconds / f:F2},\"unet\":{tm.Unet.TotalSeconds / f:F2},\"vae_decode\":{tm.VaeDecode.TotalSeconds / f:F2},\"color_fix\":{tm.ColorFix.TotalSeconds / f:F2}}}," +
            $"\"encodes\":{tm.Encodes},\"encode_s_each\":{tm.VaeEncode.TotalSeconds / Math.Max(1, tm.Encodes):F2},\"peak_rss_gb\":{Rss("VmHWM"):F2},\"load_before\":{load0},\"load_after\":{load1}}}");
        Console.WriteLine(line);
        var results = Path.Combine(RepoRoot(), "bench", "results");
        Directory.CreateDirectory(results);
        File.AppendAllText(Path.Combine(results, "dloral-frame.jsonl"), line + Environment.NewLine);
        return 0;
    }

    private static T Config<T>(string golden, string file, Func<System.Text.Json.JsonElement, string, T> parse)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(golden, "sd21_reference", file)));
        return parse(doc.RootElement.GetProperty("config"), file);
    }

    private static double Rss(string key)
    {
        foreach (var l in File.ReadLines("/proc/self/status"))
            if (l.StartsWith(key + ":", StringComparison.Ordinal))
                return long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0 / 1024.0;
        return double.NaN;
    }

    private static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Dloral.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? ".";
    }

    private static string FindGolden()
    {
        var env = Environment.GetEnvironmentVariable("DLORAL_GOLDEN");
        if (!string.IsNullOrEmpty(env)) return env;
        return Path.GetFullPath(Path.Combine(RepoRoot(), "..", "shared", "golden"));
    }
}
