using System.CommandLine;
using System.Globalization;
using Dloral.Media;
using Dloral.Metrics;
using Dloral.Pipeline;

namespace Dloral.Cli.Commands;

/// <summary><c>dloral eval RESULT... [--gt GT] [--lr LR] -o REPORT_DIR</c>: quality, temporal and no-reference metrics with a report.</summary>
public static class EvalCommand
{
    public static Command Create(CliConsole console)
    {
        var results = new Argument<string[]>("RESULT") { Description = "One or more results to evaluate: videos, images or folders of images.", Arity = ArgumentArity.OneOrMore };
        var gt = new Option<string?>("--gt") { Description = "Ground truth (same frame count and size as the results): enables PSNR, SSIM, resnet18_feature_distance and tOF; the warping flow is then estimated on it." };
        var lr = new Option<string?>("--lr") { Description = "Low-resolution input: its bicubic upscale is evaluated as an extra row \"bicubic\"." };
        var scale = new Option<int?>("--scale", "-s") { Description = "Scale: border crop of PSNR/SSIM and the bicubic factor (default: ground truth / LR size ratio, else 4)." };
        var output = new Option<string>("--output", "-o") { Description = "Report folder: report.json, report.md, plots/*.svg, crops/*.png.", Required = true };
        var frames = new Option<long?>("--frames", "-n") { Description = "Evaluate at most this many frames." };
        var noTemporal = new Option<bool>("--no-temporal") { Description = "Skip warping error and tOF (the optical flow is the slowest part)." };
        var noFeature = new Option<bool>("--no-feature-distance") { Description = "Skip resnet18_feature_distance." };
        var onnx = new Option<string?>("--resnet18-onnx") { Description = $"ResNet-18 ONNX file (default: the copy shipped next to dloral, or ${ResNet18OnnxImporter.PathVariable})." };
        var spynet = new Option<string?>("--spynet") { Description = "SPyNet weights (safetensors, keys basic_module.* or under a '...spynet.' prefix): use this learned flow for the temporal metrics instead of the classical pyramidal Lucas-Kanade." };
        var spynetInput = new Option<string>("--spynet-input") { Description = "Input range the SPyNet weights expect: unit = [0,1] (standard pretrained SPyNet), signed = [-1,1] (DLoRAL's CFR).", DefaultValueFactory = _ => "unit" };
        spynetInput.AcceptOnlyFromAmong("unit", "signed");
        var lpipsVgg = new Option<string?>("--lpips-vgg") { Description = "LPIPS: the torchvision VGG-16 weights (vgg16-397923af.pth, keys features.N.*; .pth or .safetensors). With --lpips-lin, adds 'lpips' (needs --gt)." };
        var lpipsLin = new Option<string?>("--lpips-lin") { Description = "LPIPS: the official v0.1 linear heads (lpips/weights/v0.1/vgg.pth, keys linK.model.1.weight; .pth or .safetensors)." };
        var crop = new Option<int>("--crop-size") { Description = "Side of the side-by-side crops in pixels.", DefaultValueFactory = _ => 128 };
        var threads = new Option<int?>("--threads") { Description = "CPU threads for the tensor engine (default: all cores)." };
        var device = new Option<string>("--device") { Description = "cpu (default) or cuda[:N].", DefaultValueFactory = _ => "cpu" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Print nothing but errors." };
        var timingsOption = new Option<bool>("--timings") { Description = "Print the wall and CPU time of every stage (decode, each metric, flow) to stderr." };

        var command = new Command("eval", "Measure results: PSNR/SSIM on Y (BT.601, border crop = scale) and RGB, resnet18_feature_distance (not LPIPS), warping error and tOF (classical optical flow), and no-reference indicators; writes JSON, Markdown, SVG plots and PNG crops.")
        {
            results, gt, lr, scale, output, frames, noTemporal, noFeature, onnx, spynet, spynetInput, lpipsVgg, lpipsLin, crop, threads, device, quiet, timingsOption,
        };
        command.SetAction((parse, ct) => CommandErrors.RunAsync(console, ct, token =>
        {
            bool isQuiet = parse.GetValue(quiet);
            if (parse.GetValue(threads) is int t)
            {
                if (t < 1) throw new UsageException($"--threads must be at least 1, got {t}");
                TorchRuntime.Initialize(t);
            }
            else TorchRuntime.Initialize();
            // Eval allocates the same full-frame temporaries every frame: reusing them avoids page-fault churn.
            TorchRuntime.ReuseFreedMemory();
            if (parse.GetValue(scale) is < 1) throw new UsageException($"--scale must be at least 1, got {parse.GetValue(scale)}");
            if (parse.GetValue(frames) is < 1) throw new UsageException($"--frames must be at least 1, got {parse.GetValue(frames)}");
            if (parse.GetValue(crop) < 8) throw new UsageException($"--crop-size must be at least 8, got {parse.GetValue(crop)}");
            var dev = Upscaler.ParseDevice(parse.GetValue(device)!);
            string outDir = parse.GetValue(output)!;
            if (File.Exists(outDir)) throw new UsageException($"{outDir}: the report folder is an existing file");

            var sourceOptions = new FrameSourceOptions
            {
                MaxFrames = parse.GetValue(frames),
                CancellationToken = token,
                OnWarning = isQuiet ? null : w => console.Error.WriteLine("warning: " + w),
            };
            using var media = new MediaEvalInputs();
            var resultInputs = parse.GetValue(results)!.Select(p => media.Open(p, null, sourceOptions)).ToList();
            // Equal file names in different folders would make ambiguous rows: use the paths then.
            if (resultInputs.Select(r => r.Name).Distinct().Count() != resultInputs.Count)
                resultInputs = resultInputs.Select(r => r with { Name = r.Path }).ToList();
            var gtInput = parse.GetValue(gt) is { } g ? media.Open(g, "ground truth", sourceOptions) : null;
            var lrInput = parse.GetValue(lr) is { } l ? media.Open(l, "bicubic", sourceOptions) : null;

            using var learnedFlow = parse.GetValue(spynet) is { } weights
                ? BadFileIsUsage(() => SpyNetFlow.Load(weights, parse.GetValue(spynetInput) == "signed" ? SpyNetInputRange.Signed : SpyNetInputRange.Unit, dev))
                : null;
            string? vggPath = parse.GetValue(lpipsVgg), linPath = parse.GetValue(lpipsLin);
            if ((vggPath is null) != (linPath is null)) throw new UsageException("LPIPS needs both --lpips-vgg and --lpips-lin");
            using var lpips = vggPath is not null && linPath is not null
                ? BadFileIsUsage(() => Dloral.Training.Losses.LpipsLoss.Load(vggPath, linPath, dev))
                : null;
            var timings = parse.GetValue(timingsOption) ? new EvalTimings() : null;
            var options = new EvalOptions
            {
                Timings = timings,
                Lpips = lpips is null ? null : (a, b) => LpipsDistance(lpips, a, b),
                Flow = learnedFlow is null ? new LucasKanadeFlow() : learnedFlow,
                Scale = parse.GetValue(scale),
                Temporal = !parse.GetValue(noTemporal),
                FeatureDistance = !parse.GetValue(noFeature),
                ResNet18OnnxPath = parse.GetValue(onnx),
                LowResUpscale = BicubicUpscaler.Resize,
                CropSize = parse.GetValue(crop),
                MaxFrames = parse.GetValue(frames),
                Device = dev,
                CancellationToken = token,
                // A live counter only on a terminal; logs get the final summary line instead.
                OnFrame = isQuiet || !console.ErrorIsTerminal ? null : n => console.Error.Write($"\revaluated {n} frame(s)"),
            };
            EvalReport report;
            try
            {
                report = VideoEvaluator.Evaluate(resultInputs, gtInput, lrInput, options);
            }
            catch (Exception e) when (e is EvalInputException or InvalidDataException)
            {
                // Mismatched inputs and unreadable model files are the user's input: exit code 2.
                throw new UsageException(e.Message);
            }
            if (timings is not null) console.Error.WriteLine(timings.ToString());
            using (report)
            {
                if (!isQuiet && console.ErrorIsTerminal) console.Error.WriteLine();
                ReportWriter.Write(report, outDir);
                if (!isQuiet)
                {
                    console.Out.WriteLine(Summary(report));
                    console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"wrote {Path.Combine(outDir, ReportWriter.MarkdownFile)} and {Path.Combine(outDir, ReportWriter.JsonFile)} ({report.FrameCount} frame(s), {report.Seconds:F1} s)"));
                }
            }
            return Task.FromResult(ExitCodes.Ok);
        }));
        return command;
    }

    /// <summary>LPIPS of two [3,H,W] images in [0,1] (LPIPS takes [-1,1] batches).</summary>
    private static double LpipsDistance(Dloral.Training.Losses.LpipsLoss lpips, TorchSharp.torch.Tensor a, TorchSharp.torch.Tensor b)
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        using var mode = TorchSharp.torch.inference_mode();
        var x = (a.dim() == 3 ? a.unsqueeze(0) : a) * 2 - 1;
        var y = (b.dim() == 3 ? b.unsqueeze(0) : b) * 2 - 1;
        return lpips.Compute(x, y).item<float>();
    }

    private static T BadFileIsUsage<T>(Func<T> load)
    {
        try { return load(); }
        catch (Exception e) when (e is InvalidDataException or Dloral.Checkpoints.SafeTensorsException) { throw new UsageException(e.Message); }
    }

    /// <summary>One line per row with its clip values.</summary>
    private static string Summary(EvalReport report)
    {
        var lines = new List<string>();
        foreach (var row in report.Rows)
        {
            var parts = MetricKeys.All.Where(row.Has).Select(k =>
            {
                var v = row.Clip(k);
                string text = v is null
                    ? (k is MetricKeys.PsnrY or MetricKeys.PsnrRgb && row.IdenticalFrames > 0 ? "inf" : "-")
                    : v.Value.ToString("0.####", CultureInfo.InvariantCulture);
                return $"{k}={text}";
            });
            lines.Add($"{row.Name}: {string.Join(" ", parts)}");
        }
        return string.Join(Environment.NewLine, lines);
    }
}
