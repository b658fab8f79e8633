using System.Globalization;
using Dloral.Media;
using Dloral.Pipeline;
using static TorchSharp.torch;

namespace Dloral.Bench;

/// <summary>
/// <c>bicubic [--input FILE] [--size WxH] [--frames N] [--scale S] [--preset P] [--runs R] [--warmup W] [--models M1,M2] [--dtypes float32,bfloat16] [--self-ensembles 1,2] [--reuse-memory]</c>:
/// the reference row of every speed comparison. Decodes a clip, upscales every frame with bicubic and encodes
/// H.264, timing each stage in a sequential loop (decode, upscale, encode = pipe write + ffmpeg back-pressure,
/// finish = encoder flush); a second row runs the product path <c>Upscaler.Run</c> (threaded reader/writer) for the
/// real end-to-end frames per second. <c>--models</c> adds one row per model (a name or a model file that
/// <c>dloral upscale --model</c> accepts) through the same product path, so every model gets its ratio to bicubic
/// measured in the same run (one row per model, dtype and self-ensemble size).
/// </summary>
internal static class BicubicEndToEndBench
{
    public static int Run(string[] args)
    {
        var opts = ParseArgs(args);
        TorchRuntime.Initialize();
        // --reuse-memory: keep freed buffers in the heap (what `dloral eval` and `dloral train` do), to compare page-fault cost.
        if (opts.ContainsKey("--reuse-memory")) TorchRuntime.ReuseFreedMemory();
        string work = Directory.CreateTempSubdirectory("dloral-bench-").FullName;
        try
        {
            string input = opts.GetValueOrDefault("--input") ?? MakeClip(work, opts.GetValueOrDefault("--size") ?? "320x180", Int(opts, "--frames", 24));
            int scale = Int(opts, "--scale", 4);
            string preset = opts.GetValueOrDefault("--preset") ?? "medium";
            var runner = new BenchRunner("bicubic", $"End-to-end bicubic x{scale} (reference row)", Int(opts, "--warmup", 1), Int(opts, "--runs", 3));
            var info = MediaProbe.Probe(input);
            long frames = info.FrameCount;
            runner.Settings["input"] = opts.ContainsKey("--input") ? input : $"ffmpeg testsrc2 {info.Width}x{info.Height}, {frames} frames (lossless FFV1)";
            runner.Settings["output"] = $"{info.Width * scale}x{info.Height * scale} H.264 preset {preset}, CRF 18";
            runner.Settings["threads"] = torch_threads();

            string output = Path.Combine(work, "out.mp4");
            runner.Measure("bicubic (stages, sequential)", frames, timer =>
            {
                using var source = FrameSource.Open(input);
                var writerOptions = FrameWriterOptions.MatchSource(source) with { Overwrite = true, Preset = preset };
                using var sink = FrameWriter.Open(output, writerOptions);
                using var e = source.GetEnumerator();
                while (true)
                {
                    Tensor? lr = timer.Time("decode", () => e.MoveNext() ? FrameTensors.ToTensor(e.Current) : null);
                    if (lr is null) break;
                    using (lr)
                    {
                        using var hr = timer.Time("upscale", () => BicubicUpscaler.Resize(lr, scale));
                        using (timer.Stage("encode")) sink.Write(FrameTensors.ToFrame(hr, 8, e.Current.Index));
                    }
                }
                using (timer.Stage("finish")) sink.Complete();
            });
            runner.Measure("bicubic (dloral upscale path)", frames, timer =>
            {
                using (timer.Stage("total"))
                    Upscaler.Run(input, output, new UpscaleOptions { Model = "bicubic", Scale = scale, Overwrite = true, Preset = preset });
            }, "Upscaler.Run: reader, model and writer overlap on their own threads");
            var dtypes = (opts.GetValueOrDefault("--dtypes") ?? "float32").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var ensembles = (opts.GetValueOrDefault("--self-ensembles") ?? "1").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(e => int.Parse(e, CultureInfo.InvariantCulture)).ToArray();
            foreach (var model in (opts.GetValueOrDefault("--models") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                foreach (var dtype in dtypes)
                    foreach (var ensemble in ensembles)
                        MeasureModel(runner, model, input, output, scale, preset, frames, dtype is "bfloat16" or "bf16" ? TorchSharp.torch.ScalarType.BFloat16 : TorchSharp.torch.ScalarType.Float32, ensemble);
            runner.Write();
            return 0;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>
    /// A learned model through the product's streaming job. DLoRAL models (loaded once, outside the timed runs) also
    /// report their own stages (prepare, codec encode, CFR, UNet, codec decode, colour fix); others report the total.
    /// </summary>
    private static void MeasureModel(BenchRunner runner, string model, string input, string output, int scale, string preset, long frames,
                                     TorchSharp.torch.ScalarType dtype, int selfEnsemble)
    {
        using var upscaler = DloralModelSource.TryCreate(model, new DloralVideoOptions { Scale = scale, DType = dtype, SelfEnsemble = selfEnsemble });
        if (upscaler is not DloralUpscaler dloral)
        {
            runner.Measure($"{Path.GetFileName(model)} (dloral upscale path)", frames, timer =>
            {
                using (timer.Stage("total"))
                    Upscaler.Run(input, output, new UpscaleOptions { Model = model, Scale = scale, Overwrite = true, Preset = preset });
            }, "Upscaler.Run with this model");
            return;
        }
        string ensemble = selfEnsemble > 1 ? $" self-ensemble {selfEnsemble}" : "";
        runner.Measure($"{Path.GetFileName(model)} {(dtype == TorchSharp.torch.ScalarType.BFloat16 ? "bf16" : "fp32")}{ensemble} (DLoRAL, streaming job)", frames, timer =>
        {
            var t = dloral.Timings;
            var before = (t.Prepare, t.VaeEncode, t.Cfr, t.Unet, t.VaeDecode, t.ColorFix);
            dloral.Reset();
            using (timer.Stage("total"))
            {
                using var source = FrameSource.Open(input);
                using var sink = FrameWriter.Open(output, FrameWriterOptions.MatchSource(source) with { Overwrite = true, Preset = preset });
                new VideoUpscaleJob(dloral).Run(source, sink);
            }
            timer.Add("prepare", t.Prepare - before.Prepare);
            timer.Add("codec encode", t.VaeEncode - before.VaeEncode);
            timer.Add("cfr", t.Cfr - before.Cfr);
            timer.Add("unet", t.Unet - before.Unet);
            timer.Add("codec decode", t.VaeDecode - before.VaeDecode);
            timer.Add("colour fix", t.ColorFix - before.ColorFix);
        }, "model loaded once; decode and encode overlap on their own threads (in total)");
    }

    private static string torch_threads() => TorchSharp.torch.get_num_threads().ToString(CultureInfo.InvariantCulture);

    private static string MakeClip(string dir, string size, int frames)
    {
        string path = Path.Combine(dir, "input.mkv");
        BenchUtil.Run("ffmpeg", ["-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", $"testsrc2=s={size}:r=25",
            "-frames:v", frames.ToString(CultureInfo.InvariantCulture), "-c:v", "ffv1", path]);
        return path;
    }

    internal static Dictionary<string, string> ParseArgs(string[] args)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal)) throw new ArgumentException($"unexpected argument '{args[i]}'");
            d[args[i]] = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : "true";
        }
        return d;
    }

    internal static int Int(Dictionary<string, string> d, string key, int fallback) =>
        d.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
}
