using System.Diagnostics;
using Dloral.Checkpoints;
using Dloral.Diffusion;
using Dloral.Nn;
using static TorchSharp.torch;

namespace Dloral.Bench;

/// <summary>
/// Seconds per forward and peak memory of the full-size SD 2.1-base UNet and VAE (random weights), fp32 or bf16.
/// Usage: <c>Dloral.Bench sd (unet|vae-encode|vae-decode|tiled-encode|tiled-decode|load|ops) [fp32|bf16] [--cl] [--threads N] [--iters N] [--golden DIR]</c>.
/// Run one mode per process so the peak RSS (VmHWM) belongs to that mode alone.
/// </summary>
public static class SdForwardBench
{
    public static int Run(string[] args)
    {
        if (args.Length == 0)
        {
            Console.Error.WriteLine("usage: sd (unet|vae-encode|vae-decode|tiled-encode|tiled-decode|load|ops) [fp32|bf16] [--cl] [--threads N] [--iters N] [--golden DIR]");
            return 2;
        }
        string mode = args[0];
        var dtype = args.Contains("bf16") ? ScalarType.BFloat16 : ScalarType.Float32;
        int threads = IntArg(args, "--threads", 2);
        int iters = IntArg(args, "--iters", 3);
        string golden = StrArg(args, "--golden") ?? FindGolden();
        TorchRuntime.Initialize(threads);
        Console.WriteLine($"sd {mode} {dtype} channels_last={args.Contains("--cl")} threads={threads} iters={iters} load={File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
        using var guard = inference_mode();
        var options = new ModelOptions(DType: dtype) { ChannelsLast = args.Contains("--cl") };
        switch (mode)
        {
            case "unet":
            {
                var sw = Stopwatch.StartNew();
                using var unet = new UNet2DCondition(Config(golden, "unet_config.json", UNet2DConditionConfig.FromJson), options);
                unet.eval();
                Console.WriteLine($"  build {sw.Elapsed.TotalSeconds:F1}s, RSS {Rss("VmRSS"):F2} GB");
                using var sample = randn(1, 4, 64, 64).to_type(dtype);
                using var context = randn(1, 77, 1024).to_type(dtype);
                using var t = tensor(new long[] { 1 });
                Time(iters, () => unet.call(sample, t, context));
                break;
            }
            case "vae-encode":
            case "vae-decode":
            {
                using var vae = new AutoencoderKL(Config(golden, "vae_config.json", AutoencoderKLConfig.FromJson), options);
                vae.eval();
                Console.WriteLine($"  RSS after build {Rss("VmRSS"):F2} GB");
                if (mode == "vae-encode")
                {
                    using var image = (rand(1, 3, 512, 512) * 2 - 1).to_type(dtype);
                    Time(iters, () => vae.EncodeMoments(image));
                }
                else
                {
                    using var latent = randn(1, 4, 64, 64).to_type(dtype);
                    Time(iters, () => vae.Decode(latent));
                }
                break;
            }
            case "tiled-decode":
            case "tiled-encode":
            {
                // A whole frame (default 1920×1080) through TiledVae with its default tiles: peak memory stays near one tile's.
                var size = (StrArg(args, "--size") ?? "1920x1080").Split('x').Select(long.Parse).ToArray();
                using var vae = new AutoencoderKL(Config(golden, "vae_config.json", AutoencoderKLConfig.FromJson), options);
                vae.eval();
                var tiled = new Dloral.Pipeline.TiledVae(vae);
                if (mode == "tiled-decode")
                {
                    using var latent = randn(1, 4, size[1] / 8, size[0] / 8).to_type(dtype);
                    Time(iters, () => tiled.Decode(latent));
                }
                else
                {
                    using var image = (rand(1, 3, size[1], size[0]) * 2 - 1).to_type(dtype);
                    Time(iters, () => tiled.EncodeMoments(image));
                }
                break;
            }
            case "load":
            {
                // Writes a random full-size UNet as an fp16 diffusers folder, then loads it into `dtype` in a fresh
                // process ("load-only"), so the peak RSS shows whether loading needs a second copy.
                var root = StrArg(args, "--dir") ?? Path.Combine(Path.GetTempPath(), "dloral-sd-bench");
                var unetDir = Path.Combine(root, "unet");
                if (!File.Exists(Path.Combine(unetDir, "diffusion_pytorch_model.fp16.safetensors")))
                {
                    Directory.CreateDirectory(unetDir);
                    File.WriteAllText(Path.Combine(root, "model_index.json"), "{\"unet\": [\"diffusers\", \"UNet2DConditionModel\"]}");
                    using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(golden, "sd21_reference", "unet_config.json")));
                    File.WriteAllText(Path.Combine(unetDir, "config.json"), doc.RootElement.GetProperty("config").GetRawText());
                    using var unet = new UNet2DCondition(UNet2DConditionConfig.Load(Path.Combine(unetDir, "config.json")), new ModelOptions(DType: ScalarType.Float16));
                    SafeTensorsWriter.Save(Path.Combine(unetDir, "diffusion_pytorch_model.fp16.safetensors"), unet.state_dict());
                    Console.WriteLine($"  wrote {root} (fp16); run again to measure the load alone");
                    break;
                }
                var sw = Stopwatch.StartNew();
                using var loaded = DiffusersFolder.Open(root).LoadUNet(options);
                long bytes = loaded.parameters().Sum(p => p.numel() * p.ElementSize);
                Console.WriteLine($"  loaded fp16 file into {dtype} in {sw.Elapsed.TotalSeconds:F1}s: parameters {bytes / 1e9:F2} GB, peak RSS {Rss("VmHWM"):F2} GB");
                break;
            }
            case "ops":
            {
                // CPU seconds of the UNet's main op types at SD 2.1 sizes, fp32 vs bf16 (which ones keep bf16 from being 2× faster).
                foreach (var dt in new[] { ScalarType.Float32, ScalarType.BFloat16 })
                {
                    using var scope = NewDisposeScope();
                    var conv = nn.Conv2d(320, 320, 3, padding: 1, dtype: dt);
                    var x = randn(1, 320, 64, 64).to_type(dt);
                    var lin = nn.Linear(320, 2560, dtype: dt);
                    var tokens = randn(1, 4096, 320).to_type(dt);
                    var q = randn(1, 5, 4096, 64).to_type(dt);
                    var kv = randn(1, 5, 77, 64).to_type(dt);
                    var ln = nn.LayerNorm(320, dtype: dt);
                    var gw = ones(320).to_type(dt); var gb = zeros(320).to_type(dt);
                    Cpu($"{dt} conv3x3 320@64²", iters, () => conv.call(x));
                    var xcl = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
                    var wcl = conv.get_parameter("weight")!.detach().permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
                    var bcl = conv.get_parameter("bias")!.detach();
                    Cpu($"{dt} conv3x3 320@64² NCHW input, NHWC weight", iters, () => nn.functional.conv2d(x, wcl, bcl, padding: [1, 1]));
                    Cpu($"{dt} conv3x3 320@64² channels_last", iters, () => nn.functional.conv2d(xcl, wcl, bcl, padding: [1, 1]));
                    Cpu($"{dt} conv3x3 320@64² channels_last output is NHWC: {nn.functional.conv2d(xcl, wcl, bcl, padding: [1, 1]).stride(1) == 1}", 1, () => x.alias());
                    Cpu($"{dt} group_norm channels_last", iters, () => nn.functional.group_norm(xcl, 32, gw, gb, 1e-5));
                    Cpu($"{dt} linear 4096×320→2560", iters, () => lin.call(tokens));
                    Cpu($"{dt} sdpa self 4096²×5×64", iters, () => nn.functional.scaled_dot_product_attention(q, q, q));
                    Cpu($"{dt} manual attention self 4096²×5×64", iters, () =>
                    {
                        using var sc = NewDisposeScope();
                        var scores = matmul(q, q.transpose(-1, -2)) * 0.125;
                        return matmul(scores.softmax(-1), q).MoveToOuterDisposeScope();
                    });
                    Cpu($"{dt} sdpa cross 4096×77", iters, () => nn.functional.scaled_dot_product_attention(q, kv, kv));
                    Cpu($"{dt} group_norm 320@64²", iters, () => nn.functional.group_norm(x, 32, gw, gb, 1e-5));
                    Cpu($"{dt} layer_norm 4096×320", iters, () => ln.call(tokens));
                    Cpu($"{dt} silu 320@64²", iters, () => nn.functional.silu(x));
                    Cpu($"{dt} gelu 4096×1280", iters, () => nn.functional.gelu(lin.call(tokens).narrow(2, 0, 1280)));
                    Cpu($"{dt} upsample nearest 320@64²", iters, () => nn.functional.interpolate(x, [128, 128], mode: InterpolationMode.Nearest));
                }
                break;
            }
            default:
                Console.Error.WriteLine($"unknown sd bench mode '{mode}'");
                return 2;
        }
        return 0;
    }

    private static void Time(int iters, Func<Tensor> forward)
    {
        var sw = Stopwatch.StartNew();
        forward().Dispose(); // warm-up (oneDNN kernel selection)
        Console.WriteLine($"  warm-up {sw.Elapsed.TotalSeconds:F2}s");
        var times = new List<double>();
        var cpu = new List<double>();
        var process = Process.GetCurrentProcess();
        for (int i = 0; i < iters; i++)
        {
            process.Refresh();
            var cpu0 = process.TotalProcessorTime;
            sw.Restart();
            forward().Dispose();
            times.Add(sw.Elapsed.TotalSeconds);
            process.Refresh();
            cpu.Add((process.TotalProcessorTime - cpu0).TotalSeconds);
        }
        times.Sort();
        cpu.Sort();
        // On a shared machine wall time depends on the load; CPU seconds / threads is the uncontended estimate.
        Console.WriteLine($"  s/forward: median {times[times.Count / 2]:F2}, min {times[0]:F2} (n={iters}); CPU s/forward median {cpu[cpu.Count / 2]:F2}; " +
            $"peak RSS {Rss("VmHWM"):F2} GB; load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
    }

    private static void Cpu(string what, int iters, Func<Tensor> op)
    {
        op().Dispose();
        var p = Process.GetCurrentProcess();
        p.Refresh();
        var c0 = p.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < iters; i++) op().Dispose();
        p.Refresh();
        Console.WriteLine($"  {what}: {(p.TotalProcessorTime - c0).TotalMilliseconds / iters:F1} CPU ms, {sw.Elapsed.TotalMilliseconds / iters:F1} wall ms");
    }

    private static T Config<T>(string golden, string file, Func<System.Text.Json.JsonElement, string, T> parse)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(golden, "sd21_reference", file)));
        return parse(doc.RootElement.GetProperty("config"), file);
    }

    private static double Rss(string key)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(key + ":", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0 / 1024.0;
        return double.NaN;
    }

    private static int IntArg(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
    }

    private static string? StrArg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static string FindGolden()
    {
        var env = Environment.GetEnvironmentVariable("DLORAL_GOLDEN");
        if (!string.IsNullOrEmpty(env)) return env;
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Dloral.slnx"))) dir = dir.Parent;
        return Path.GetFullPath(Path.Combine(dir?.FullName ?? ".", "..", "shared", "golden"));
    }
}
