using System.Diagnostics;
using System.Globalization;
using Dloral.Pipeline;
using Dloral.Pipeline.Compact;
using Dloral.Temporal;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Bench;

/// <summary>
/// Where the compact UNet's time goes: the shipped weights as <c>dloral upscale</c> runs them (adapters merged,
/// channels-last), one 320×180 → 1280×720 frame's UNet pass, with forward hooks timing every leaf module. Prints the
/// time per module kind and per module, and the rest (activations, concatenations, upsampling, adds) as "glue".
/// Args: [--model FILE] [--repeat N] [--dtype float32|bfloat16].
/// </summary>
internal static class CompactUnetProfileBench
{
    public static int Run(string[] args)
    {
        string model = BenchUtil.Arg(args, "--model", Path.Combine(BenchUtil.RepoRoot, "models", "compact", "dloral_compact.safetensors"));
        int repeat = int.Parse(BenchUtil.Arg(args, "--repeat", "3"), CultureInfo.InvariantCulture);
        var dtype = BenchUtil.Arg(args, "--dtype", "float32") is "bfloat16" or "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
        Dloral.TorchRuntime.Initialize();
        Dloral.TorchRuntime.ReuseFreedMemory();
        using var upscaler = DloralModelSource.OpenCompact(model, new DloralVideoOptions { Scale = 4, DType = dtype });
        var unet = upscaler.Model.Unet;
        using var prompt = zeros(1, 1, 64, dtype: unet.parameters().First().dtype);
        using var guard = inference_mode();
        using var sample = randn(1, 96, 180, 320, dtype: unet.parameters().First().dtype) * 0.5;

        var times = new Dictionary<string, (string Kind, double Ms)>();
        var starts = new Dictionary<string, long>();
        var flops = new Dictionary<string, double>(); // per pass, convolutions and linears (multiply-add = 2)
        bool record = false;
        var hooks = new List<Action>();
        foreach (var (name, module) in unet.named_modules())
        {
            if (module is not nn.Module<Tensor, Tensor> leaf || module.children().Any(c => c is nn.Module<Tensor, Tensor>)) continue;
            string kind = module.GetType().Name;
            var pre = leaf.register_forward_pre_hook((m, x) => { if (record) starts[name] = Stopwatch.GetTimestamp(); return x; });
            var post = leaf.register_forward_hook((m, x, y) =>
            {
                if (record) times[name] = (kind, times.GetValueOrDefault(name).Ms + Stopwatch.GetElapsedTime(starts[name]).TotalMilliseconds);
                if (m is Conv2d conv) flops[name] = 2.0 * conv.weight!.numel() * y.shape[2] * y.shape[3] * y.shape[0];
                else if (m is Linear lin) flops[name] = 2.0 * lin.weight!.numel() * (y.numel() / y.shape[^1]);
                return y;
            });
            hooks.Add(() => { pre.remove(); post.remove(); });
        }
        double total = 0;
        for (int i = 0; i <= repeat; i++)
        {
            record = i > 0;
            var sw = Stopwatch.StartNew();
            using (var y = unet.forward(sample, 1L, prompt)) { }
            if (record) total += sw.Elapsed.TotalMilliseconds;
        }
        foreach (var remove in hooks) remove();
        total /= repeat;
        double leaves = times.Values.Sum(t => t.Ms) / repeat;
        var md = new System.Text.StringBuilder();
        md.AppendLine($"# Where the compact model spends a 720p frame ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)");
        md.AppendLine();
        md.AppendLine("`dotnet run -c Release --project bench/Dloral.Bench -- compact-unet-profile` (bench/Dloral.Bench/CompactUnetProfileBench.cs). Forward hooks add a little time to every module.");
        md.AppendLine();
        md.AppendLine($"{Path.GetFileName(model)} UNet, {dtype}, 96×180×320 input, {Dloral.CpuFeatures.Current.Describe()}: {total:F1} ms per pass (mean of {repeat})");
        md.AppendLine("| kind | ms | share | GFLOP per pass | GFLOP/s |");
        md.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var g in times.GroupBy(t => t.Value.Kind).OrderByDescending(g => g.Sum(t => t.Value.Ms)))
        {
            double ms = g.Sum(t => t.Value.Ms) / repeat, gflop = g.Sum(t => flops.GetValueOrDefault(t.Key)) / 1e9;
            md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {g.Key} | {ms:F1} | {ms / total:P0} | {(gflop > 0 ? gflop.ToString("F1", CultureInfo.InvariantCulture) : "")} | {(gflop > 0 ? (gflop / ms * 1e3).ToString("F0", CultureInfo.InvariantCulture) : "")} |"));
        }
        md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| glue (activations, cat, upsampling, adds) | {total - leaves:F1} | {(total - leaves) / total:P0} | | |"));
        md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"Total {flops.Values.Sum() / 1e9:F1} GFLOP per pass in convolutions and linears."));
        md.AppendLine();
        md.AppendLine("| module | kind | ms | GFLOP/s |");
        md.AppendLine("|---|---|---:|---:|");
        foreach (var (name, (kind, ms)) in times.OrderByDescending(t => t.Value.Ms).Take(25))
            md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {kind} | {ms / repeat:F1} | {(flops.ContainsKey(name) ? (flops[name] / 1e6 / (ms / repeat)).ToString("F0", CultureInfo.InvariantCulture) : "")} |"));
        md.AppendLine();
        ProfileCfr(upscaler.Model, repeat, md);
        BenchUtil.WriteMarkdown("compact-unet-profile", md.ToString());
        return 0;
    }

    /// <summary>The CFR of one frame pair at 720p, whole and in parts (the parts the compact model's config uses).</summary>
    private static void ProfileCfr(DloralModel model, int repeat, System.Text.StringBuilder md)
    {
        var cfr = model.Cfr;
        var codec = model.Codec;
        int f = cfr.Config.DownscaleFactor;
        using var frames = rand([1L, 2, 3, 720, 1280]) * 2 - 1;
        using var latents = codec.Encode(frames.view(2, 3, 720, 1280)).view(1, 2, -1, 720 / f, 1280 / f);
        using var uncertainty = zeros([1L, 1, 1, 720 / f, 1280 / f]);
        double Time(Action run)
        {
            run();
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < repeat; i++) run();
            return sw.Elapsed.TotalMilliseconds / repeat;
        }
        using var down = CrossFrameRetrieval.DownsampleFrames(frames, cfr.Config.FlowFrameFactor);
        using var cur = down.select(1, 1);
        using var prev = down.select(1, 0);
        using var flow = cfr.LatentFlow(cur, prev, 720 / f, 1280 / f);
        using var identityGrid = stack([linspace(-1, 1, 1280).expand(720, 1280), linspace(-1, 1, 720).view(720, 1).expand(720, 1280)], 2).unsqueeze(0);
        var rows = new List<(string, double)>
        {
            ("whole CFR (t = 2)", Time(() => { using var s = NewDisposeScope(); cfr.Forward(frames, latents, uncertainty, null); })),
            ($"downsample frames /{cfr.Config.FlowFrameFactor} (bicubic)", Time(() => { using var s = NewDisposeScope(); CrossFrameRetrieval.DownsampleFrames(frames, cfr.Config.FlowFrameFactor); })),
            ($"flow ({cfr.Config.Flow})", Time(() => { using var s = NewDisposeScope(); cfr.LatentFlow(cur, prev, 720 / f, 1280 / f); })),
            ("codec decode (previous latent)", Time(() => { using var s = NewDisposeScope(); codec.Decode(latents.select(1, 0)); })),
            ("flow warp at 1280×720 (border)", Time(() =>
            {
                using var s = NewDisposeScope();
                var full = nn.functional.interpolate(flow, size: [720, 1280], mode: InterpolationMode.Bilinear, align_corners: false);
                FlowWarp.Warp(frames.select(1, 0), full.permute(0, 2, 3, 1), padding: GridSamplePaddingMode.Border, flowScale: f);
            })),
            ("  of which: flow upsampled to 1280×720 (bilinear)", Time(() =>
            {
                using var s = NewDisposeScope();
                nn.functional.interpolate(flow, size: [720, 1280], mode: InterpolationMode.Bilinear, align_corners: false).mul_((double)f);
            })),
            ("  of which: grid_sample alone (border, identity grid)", Time(() =>
            {
                using var s = NewDisposeScope();
                nn.functional.grid_sample(frames.select(1, 0), identityGrid, GridSampleMode.Bilinear, GridSamplePaddingMode.Border, align_corners: true);
            })),
            ("codec encode (warped frame)", Time(() => { using var s = NewDisposeScope(); codec.Encode(frames.select(1, 0)); })),
        };
        int pool = cfr.Config.AttentionPool;
        using var pooled = nn.functional.avg_pool2d(latents.select(1, 1), pool, pool, ceil_mode: true, count_include_pad: false);
        var attention = cfr.Attention;
        int? chunkBefore = attention.QueryChunkSize;
        foreach (int? chunk in new int?[] { int.MaxValue, null, 1024, 256, 64 })
        {
            attention.QueryChunkSize = chunk;
            rows.Add(($"cross-frame attention on the {pooled.shape[2]}×{pooled.shape[3]} grid, query chunk {(chunk is int.MaxValue ? "dense (one block)" : chunk?.ToString(CultureInfo.InvariantCulture) ?? $"default ({attention.ChunkFor(1, pooled.shape[2] * pooled.shape[3])})")}",
                Time(() => { using var s = NewDisposeScope(); attention.forward(pooled, pooled, latents.select(1, 1), pooled); })));
        }
        attention.QueryChunkSize = chunkBefore;
        md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"CFR, one 1280×720 frame pair ({cfr.Config.Flow}, warp {(cfr.Config.WarpFrames ? "frames" : "latents")}), mean of {repeat}:"));
        md.AppendLine("| part | ms |");
        md.AppendLine("|---|---:|");
        foreach (var (name, ms) in rows) md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {ms:F1} |"));
    }
}
