using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Dloral.Pipeline.Compact;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Dloral.Bench;

/// <summary>
/// Speed of the compact DLoRAL one-step forward for 320×180 → 1280×720 (×4), per stage, for a few candidate sizes,
/// fp32 and bf16: wall seconds AND process CPU seconds per output frame (the machine is shared, so CPU time is the
/// fairer number; the 1-minute load average is recorded before and after each case).
/// Per output frame the video pipeline does: bicubic of one frame, codec encode of ONE frame (the previous frame's
/// latent is cached), uncertainty map, CFR (flow + retrieval) on the window, the UNet, and one decode.
/// Args: [--repeat N] [--threads T] [--candidates a,b,...] [--dtypes fp32,bf16].
/// </summary>
internal static class CompactModelBench
{
    private sealed record Candidate(string Name, string Description, long[] Channels, int ConvKernel, int FlowDownscale, int AttentionPool, int CodecFactor = 8, int LayersPerBlock = 1);

    private static readonly Candidate[] Candidates =
    [
        new("c32k1", "UNet [32,64,128], 1×1 conv_in/conv_out, CFR attention on a /2 latent grid, flow on /8 frames (the latent grid)", [32, 64, 128], 1, 1, 2),
        new("c48k1", "UNet [48,96,128], 1×1 conv_in/conv_out, CFR attention /2, flow /8", [48, 96, 128], 1, 1, 2),
        new("c48k3", "UNet [48,96,128], 3×3 conv_in/conv_out, CFR attention /2, flow /8 (the shipped config)", [48, 96, 128], 3, 1, 2),
        new("c64k3", "UNet [64,128,192], 3×3 conv_in/conv_out, CFR attention /2, flow /8 (weights 40 MB in fp32)", [64, 128, 192], 3, 1, 2),
        new("c48k3p4", "c48k3 with CFR attention on a /4 latent grid", [48, 96, 128], 3, 1, 4),
        new("c48k3f16", "c48k3 with the flow on /16 frames (upsampled ×2 to the latent grid)", [48, 96, 128], 3, 2, 2),
        new("f4c48", "pixel-unshuffle f=4 (48-ch latents at the LR grid), UNet [48,96,128], flow /8 frames, CFR attention /4 (the /16 grid of c48k3)", [48, 96, 128], 3, 2, 4, 4),
        new("f4c32x4", "f=4, four levels UNet [32,64,96,128], flow /8, attention /4", [32, 64, 96, 128], 3, 2, 4, 4),
        new("f4c32", "f=4, UNet [32,64,128], flow /8, attention /4", [32, 64, 128], 3, 2, 4, 4),
        // Larger bases for a next round (the shipped f4c48's base network is what limits its PSNR).
        new("f4c64", "f=4, UNet [64,128,192], flow /8, attention /4", [64, 128, 192], 3, 2, 4, 4),
        new("f4c48l2", "f=4, UNet [48,96,128] with two resnets per block (layers_per_block 2), flow /8, attention /4", [48, 96, 128], 3, 2, 4, 4, 2),
    ];

    public static int Run(string[] args)
    {
        int repeat = int.Parse(BenchUtil.Arg(args, "--repeat", "3"), CultureInfo.InvariantCulture);
        int threads = int.Parse(BenchUtil.Arg(args, "--threads", "2"), CultureInfo.InvariantCulture);
        var names = BenchUtil.Arg(args, "--candidates", string.Join(",", Candidates.Select(c => c.Name))).Split(',');
        var dtypes = BenchUtil.Arg(args, "--dtypes", "fp32,bf16").Split(',');
        Dloral.TorchRuntime.Initialize(threads);
        string folder = Path.Combine(BenchUtil.RepoRoot, "models", "compact");
        string compactJson = File.ReadAllText(Path.Combine(folder, "compact.json")), unetJson = File.ReadAllText(Path.Combine(folder, "unet_config.json"));

        var rows = new List<Dictionary<string, object>>();
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"# compact DLoRAL forward, 320×180 → 1280×720, {threads} threads, {repeat} timed frames after 1 warm-up");
        md.AppendLine();
        md.AppendLine("| candidate | dtype | params | wall s/frame | CPU s/frame | bicubic | encode | uncertainty | CFR | UNet | decode | load avg before→after |");
        md.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var cand in Candidates.Where(c => names.Contains(c.Name)))
            foreach (var dt in dtypes)
            {
                var dtype = dt == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
                var config = CompactDloralConfig.Parse(Modify(compactJson, cand), ModifyUnet(unetJson, cand), $"candidate {cand.Name}");
                using var model = CompactDloral.Build(config);
                if (dtype != ScalarType.Float32) model.ToDType(dtype);
                long parameters = model.NamedWeights().Sum(kv => kv.Value.numel());
                string loadBefore = LoadAverage();
                var stages = new Dictionary<string, double>();
                double wall = 0, cpu = 0;
                using var guard = inference_mode();
                for (int i = 0; i <= repeat; i++)
                {
                    var (w, c, s) = OneFrame(model, seed: i);
                    if (i == 0) continue; // warm-up: oneDNN primitive creation
                    wall += w; cpu += c;
                    foreach (var (k, v) in s) stages[k] = stages.GetValueOrDefault(k) + v;
                }
                string loadAfter = LoadAverage();
                foreach (var k in stages.Keys.ToList()) stages[k] /= repeat;
                wall /= repeat; cpu /= repeat;
                rows.Add(new()
                {
                    ["candidate"] = cand.Name, ["description"] = cand.Description, ["dtype"] = dt, ["parameters"] = parameters,
                    ["wall_seconds_per_frame"] = wall, ["cpu_seconds_per_frame"] = cpu, ["stage_wall_seconds"] = stages,
                    ["load_average_before"] = loadBefore, ["load_average_after"] = loadAfter, ["threads"] = threads,
                });
                md.AppendLine(CultureInfo.InvariantCulture,
                    $"| {cand.Name} | {dt} | {parameters / 1e6:F2} M | {wall:F2} | {cpu:F2} | {stages["bicubic"]:F3} | {stages["encode"]:F3} | {stages["uncertainty"]:F3} | {stages["cfr"]:F3} | {stages["unet"]:F3} | {stages["decode"]:F3} | {loadBefore} → {loadAfter} |");
                Console.WriteLine(md.ToString().Split('\n')[^2]);
            }
        md.AppendLine();
        foreach (var c in Candidates.Where(c => names.Contains(c.Name))) md.AppendLine(CultureInfo.InvariantCulture, $"- {c.Name}: {c.Description}");
        BenchUtil.WriteResults("compact-model", rows, md.ToString());
        return 0;
    }

    // One output frame of the video pipeline, stage by stage (wall per stage; wall and process CPU for the whole).
    private static (double Wall, double Cpu, Dictionary<string, double> Stages) OneFrame(CompactDloral model, int seed)
    {
        using var scope = NewDisposeScope();
        var lr = (rand(new long[] { 2, 3, 180, 320 }, generator: new Generator((ulong)seed + 11)) * 2 - 1).to(model.Prompt.dtype);
        var model_ = model.Model;
        var stages = new Dictionary<string, double>();
        var proc = Process.GetCurrentProcess();
        proc.Refresh();
        var cpu0 = proc.TotalProcessorTime;
        var total = Stopwatch.StartNew();
        var sw = Stopwatch.StartNew();
        Tensor Mark(string name, Tensor t) { stages[name] = sw.Elapsed.TotalSeconds; sw.Restart(); return t; }

        var prevLatent = model_.EncodeLatents(F.interpolate(lr.narrow(0, 0, 1).to_type(ScalarType.Float32), size: [720, 1280], mode: InterpolationMode.Bicubic, align_corners: false).clamp_(-1, 1));
        sw.Restart(); total.Restart(); proc.Refresh(); cpu0 = proc.TotalProcessorTime; // the previous frame's latent is cached in a video
        var hr = Mark("bicubic", F.interpolate(lr.to_type(ScalarType.Float32), size: [720, 1280], mode: InterpolationMode.Bicubic, align_corners: false).clamp_(-1, 1));
        var curLatent = Mark("encode", model_.EncodeLatents(hr.narrow(0, 1, 1)));
        var window = hr.unsqueeze(0);
        var uncertainty = Mark("uncertainty", model.UncertaintyOf(window));
        var latents = stack([prevLatent, curLatent], 1);
        var (unetIn, retrieval) = model_.Fuse(window, latents, uncertainty);
        retrieval.Dispose();
        Mark("cfr", unetIn);
        var x = Mark("unet", model_.Denoise(unetIn, model.Prompt));
        var image = Mark("decode", model_.DecodeLatents(x));
        double wall = total.Elapsed.TotalSeconds;
        proc.Refresh();
        double cpu = (proc.TotalProcessorTime - cpu0).TotalSeconds;
        if (image.shape[2] != 720 || image.shape[3] != 1280) throw new InvalidOperationException($"unexpected output [{string.Join(",", image.shape)}]");
        return (wall, cpu, stages);
    }

    private static string Modify(string compactJson, Candidate c)
    {
        var root = JsonNode.Parse(compactJson)!.AsObject();
        var cfr = root["cfr"]!.AsObject();
        cfr["flow_downscale"] = c.FlowDownscale;
        cfr["attention_pool"] = c.AttentionPool;
        var codec = root["codec"]!.AsObject();
        codec["factor"] = c.CodecFactor;
        codec["scaling_factor"] = 1.0 / c.CodecFactor;
        return root.ToJsonString();
    }

    private static string ModifyUnet(string unetJson, Candidate c)
    {
        var root = JsonNode.Parse(unetJson)!.AsObject();
        root["block_out_channels"] = new JsonArray(c.Channels.Select(v => (JsonNode)JsonValue.Create(v)!).ToArray());
        root["conv_in_kernel"] = c.ConvKernel;
        root["layers_per_block"] = c.LayersPerBlock;
        root["conv_out_kernel"] = c.ConvKernel;
        root["in_channels"] = 3 * c.CodecFactor * c.CodecFactor;
        root["out_channels"] = 3 * c.CodecFactor * c.CodecFactor;
        root["down_block_types"] = new JsonArray(c.Channels.Select(_ => (JsonNode)JsonValue.Create("DownBlock2D")!).ToArray());
        root["up_block_types"] = new JsonArray(c.Channels.Select(_ => (JsonNode)JsonValue.Create("UpBlock2D")!).ToArray());
        return root.ToJsonString();
    }

    private static string LoadAverage() => File.ReadAllText("/proc/loadavg").Split(' ')[0];
}
