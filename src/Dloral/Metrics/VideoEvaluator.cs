using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Metrics;

/// <summary>
/// Streams one or more result sequences (and optionally the ground truth and the low-resolution input) frame by
/// frame and computes full-reference, temporal and no-reference metrics. Memory stays constant in the number
/// of frames: only the previous frame of every sequence is kept. Frame counts and sizes must agree; a mismatch
/// is an <see cref="EvalInputException"/> naming the files.
/// </summary>
public static class VideoEvaluator
{
    private const int DefaultScale = 4;

    public static EvalReport Evaluate(IReadOnlyList<EvalInput> results, EvalInput? groundTruth, EvalInput? lowRes, EvalOptions? options = null)
    {
        options ??= new EvalOptions();
        if (results.Count == 0) throw new ArgumentException("at least one result is needed", nameof(results));
        var watch = Stopwatch.StartNew();
        var device = options.Device ?? CPU;
        var timings = options.Timings;
        using var feature = options.FeatureDistance && groundTruth is not null
            ? ResNet18FeatureDistance.Load(options.ResNet18OnnxPath, device)
            : null;

        var inputs = new List<EvalInput>();
        if (groundTruth is not null) inputs.Add(groundTruth);
        if (lowRes is not null) inputs.Add(lowRes);
        inputs.AddRange(results);
        var enumerators = inputs.Select(i => i.OpenFrames().GetEnumerator()).ToList();
        int gtSlot = groundTruth is null ? -1 : 0;
        int lrSlot = lowRes is null ? -1 : (groundTruth is null ? 0 : 1);
        int firstResult = inputs.Count - results.Count;

        EvalReport? report = null;
        var previous = new Tensor?[inputs.Count + 1]; // row frames + gt (slot index = rowIndex, last = gt)
        long? expected = inputs.Select(i => i.ExpectedFrames).FirstOrDefault(e => e is not null);
        if (expected is not null && options.MaxFrames is long max) expected = Math.Min(expected.Value, max);
        var cropFrames = new HashSet<long> { 0 };
        if (expected is > 2) cropFrames.Add(expected.Value / 2);
        CropSet? lastCrops = null;
        (int X, int Y, int S) region = default;
        try
        {
            for (long t = 0; options.MaxFrames is null || t < options.MaxFrames; t++)
            {
                options.CancellationToken.ThrowIfCancellationRequested();
                // Everything made during this frame (decoded frames, conversions, metrics) dies with this scope,
                // except what is detached below for the next frame: memory stays flat however long the clip.
                using var frameScope = NewDisposeScope();
                var frames = new Tensor?[inputs.Count];
                for (int i = 0; i < inputs.Count; i++)
                {
                    var e = enumerators[i];
                    frames[i] = timings.Time("decode", () => e.MoveNext() ? e.Current : null);
                }
                if (frames.All(f => f is null)) break;
                if (frames.Any(f => f is null)) throw CountMismatch(inputs, enumerators, frames, t);

                var gt = gtSlot >= 0 ? frames[gtSlot]!.to(ScalarType.Float32, device) : null;
                var rowFrames = new List<Tensor>();
                int scale;
                if (report is null)
                {
                    scale = InferScale(options, inputs, frames, gtSlot, lrSlot, firstResult);
                }
                else scale = report.Scale;
                if (lrSlot >= 0)
                {
                    var lr = frames[lrSlot]!.to(ScalarType.Float32, device);
                    var up = timings.Time("bicubic", () => options.LowResUpscale is null ? DefaultBicubic(lr, scale) : options.LowResUpscale(lr, scale));
                    rowFrames.Add(up);
                }
                for (int i = firstResult; i < inputs.Count; i++) rowFrames.Add(frames[i]!.to(ScalarType.Float32, device));
                var rowInputs = (lrSlot >= 0 ? new[] { lowRes! } : []).Concat(results).ToList();

                var reference = gt ?? rowFrames[lrSlot >= 0 && rowFrames.Count > 1 ? 1 : 0];
                int h = (int)reference.shape[1], w = (int)reference.shape[2];
                for (int r = 0; r < rowFrames.Count; r++)
                    CheckSize(rowFrames[r], rowInputs[r], r == 0 && lrSlot >= 0, reference, gt is not null ? groundTruth! : rowInputs[lrSlot >= 0 && rowInputs.Count > 1 ? 1 : 0], t, scale);

                if (report is null)
                {
                    report = new EvalReport
                    {
                        Scale = scale,
                        CropBorder = scale,
                        GroundTruthPath = groundTruth?.Path,
                        LowResPath = lowRes?.Path,
                        Width = w,
                        Height = h,
                        FlowEstimator = options.Temporal ? options.Flow.Name : null,
                        FlowSource = options.Temporal ? (gt is not null ? "ground truth" : "each result") : null,
                        FeatureModelPath = feature is null ? null : (options.ResNet18OnnxPath ?? ResNet18OnnxImporter.FindModel()),
                    };
                    for (int r = 0; r < rowFrames.Count; r++)
                        report.Rows.Add(new EvalRow(r == 0 && lrSlot >= 0 ? "bicubic" : rowInputs[r].Name, rowInputs[r].Path, r == 0 && lrSlot >= 0 ? "bicubic" : "result"));
                    region = ChooseCropRegion(reference, options.CropSize);
                }

                using (var scope = NewDisposeScope())
                {
                    // The ground truth's features are the same for every row: computed once per frame.
                    using var gtFeatures = feature is not null && gt is not null ? timings.Time("feature distance", () => feature.Features(gt)) : null;
                    for (int r = 0; r < rowFrames.Count; r++)
                        report.Rows[r].Frames.Add(FrameMetrics(rowFrames[r], gt, report.CropBorder, feature, gtFeatures, options.Lpips, timings));
                    if (options.Temporal && t > 0)
                        AddTemporal(report, options.Flow, previous, rowFrames, gt, timings);
                }

                var crops = timings.Time("crops", () => MakeCrops(report, t, region, rowFrames, gt));
                foreach (var (_, tile) in crops.Tiles) tile.DetachFromDisposeScope();
                if (cropFrames.Contains(t)) report.Crops.Add(crops);
                else
                {
                    // Keep only the latest frame's crops as the "last frame" candidate.
                    if (lastCrops is not null) DisposeCrops(lastCrops);
                    lastCrops = crops;
                }

                for (int i = 0; i < previous.Length; i++) previous[i]?.Dispose();
                for (int r = 0; r < rowFrames.Count; r++) previous[r] = rowFrames[r].DetachFromDisposeScope();
                previous[^1] = gt?.DetachFromDisposeScope();
                report.FrameCount = t + 1;
                options.OnFrame?.Invoke(t + 1);
            }
            if (report is null) throw new EvalInputException($"no frames to evaluate in {string.Join(", ", inputs.Select(i => i.Path))}");
            // The last frame's crops, unless the last frame was already one of the chosen ones.
            if (lastCrops is not null && report.Crops.All(c => c.FrameIndex < lastCrops.FrameIndex)) report.Crops.Add(lastCrops);
            else if (lastCrops is not null) DisposeCrops(lastCrops);
            lastCrops = null;
            report.Seconds = watch.Elapsed.TotalSeconds;
            return report;
        }
        catch
        {
            report?.Dispose();
            if (lastCrops is not null) DisposeCrops(lastCrops);
            throw;
        }
        finally
        {
            foreach (var p in previous) p?.Dispose();
            foreach (var e in enumerators) e.Dispose();
        }
    }

    private static void DisposeCrops(CropSet c)
    {
        foreach (var (_, crop) in c.Tiles) crop.Dispose();
    }

    private static Dictionary<string, double> FrameMetrics(Tensor frame, Tensor? gt, int border, ResNet18FeatureDistance? feature, FeatureMaps? gtFeatures, Func<Tensor, Tensor, double>? lpips, EvalTimings? timings)
    {
        var m = new Dictionary<string, double>();
        if (gt is not null)
        {
            m[MetricKeys.PsnrY] = timings.Time("psnr", () => Psnr.Compute(frame, gt, yOnly: true, border));
            m[MetricKeys.SsimY] = timings.Time("ssim", () => Ssim.Compute(frame, gt, yOnly: true, border));
            m[MetricKeys.PsnrRgb] = timings.Time("psnr", () => Psnr.Compute(frame, gt, yOnly: false, border));
            m[MetricKeys.SsimRgb] = timings.Time("ssim", () => Ssim.Compute(frame, gt, yOnly: false, border));
            if (lpips is not null) m[MetricKeys.Lpips] = timings.Time("lpips", () => lpips(frame, gt));
            if (feature is not null && gtFeatures is not null) m[MetricKeys.FeatureDistance] = timings.Time("feature distance", () => feature.Distance(frame, gtFeatures));
        }
        m[MetricKeys.GradientEnergy] = timings.Time("no-reference", () => NoReferenceIndicators.GradientEnergy(frame));
        m[MetricKeys.NoiseSigma] = timings.Time("no-reference", () => NoReferenceIndicators.NoiseSigma(frame));
        return m;
    }

    private static void AddTemporal(EvalReport report, IOpticalFlowEstimator flow, Tensor?[] previous, List<Tensor> rows, Tensor? gt, EvalTimings? timings)
    {
        Tensor? gtBack = null, gtFwd = null, gtMask = null;
        if (gt is not null)
        {
            var prevGt = previous[^1]!;
            gtBack = timings.Time("flow", () => flow.Estimate(gt, prevGt));
            gtFwd = timings.Time("flow", () => flow.Estimate(prevGt, gt));
            var (b, f) = (gtBack, gtFwd);
            gtMask = timings.Time("valid mask", () => TemporalMetrics.ValidMask(b, f));
        }
        for (int r = 0; r < rows.Count; r++)
        {
            var prev = previous[r]!;
            var cur = rows[r];
            var m = report.Rows[r].Frames[^1];
            var rowFwd = timings.Time("flow", () => flow.Estimate(prev, cur));
            Tensor back, mask;
            if (gt is not null) { back = gtBack!; mask = gtMask!; }
            else
            {
                var rowBack = timings.Time("flow", () => flow.Estimate(cur, prev));
                back = rowBack;
                mask = timings.Time("valid mask", () => TemporalMetrics.ValidMask(rowBack, rowFwd));
            }
            var (warpBack, warpMask) = (back, mask);
            var we = timings.Time("warping error", () => TemporalMetrics.WarpingError(prev, cur, warpBack, warpMask));
            m[MetricKeys.WarpingError] = we.MeanAbsolute * 1000.0;
            m[MetricKeys.WarpingErrorMse] = we.MeanSquared * 1000.0;
            if (gtFwd is not null) m[MetricKeys.Tof] = timings.Time("tof", () => TemporalMetrics.FlowDifference(rowFwd, gtFwd));
        }
    }

    private static int InferScale(EvalOptions options, List<EvalInput> inputs, Tensor?[] frames, int gtSlot, int lrSlot, int firstResult)
    {
        if (options.Scale is int s)
        {
            if (s < 1) throw new EvalInputException($"scale must be at least 1, got {s}");
            return s;
        }
        if (lrSlot < 0) return DefaultScale;
        int refSlot = gtSlot >= 0 ? gtSlot : firstResult;
        var lr = frames[lrSlot]!;
        var hr = frames[refSlot]!;
        long lw = lr.shape[2], lh = lr.shape[1], hw = hr.shape[2], hh = hr.shape[1];
        if (hw % lw != 0 || hh % lh != 0 || hw / lw != hh / lh)
            throw new EvalInputException($"cannot infer the scale: low-resolution input {inputs[lrSlot].Path} is {lw}x{lh}, {inputs[refSlot].Path} is {hw}x{hh} (not an integer multiple); pass --scale");
        return (int)(hw / lw);
    }

    private static void CheckSize(Tensor frame, EvalInput input, bool isUpscaledLr, Tensor reference, EvalInput referenceInput, long t, int scale)
    {
        if (frame.dim() != 3 || frame.shape[0] != 3)
            throw new EvalInputException($"{input.Path}: frame {t} is not an RGB image [3,H,W] (got [{string.Join(",", frame.shape)}])");
        if (frame.shape[1] == reference.shape[1] && frame.shape[2] == reference.shape[2]) return;
        string what = isUpscaledLr
            ? $"{input.Path} x{scale} is {frame.shape[2]}x{frame.shape[1]}"
            : $"{input.Path} is {frame.shape[2]}x{frame.shape[1]}";
        throw new EvalInputException($"frame size mismatch at frame {t}: {what}, but {referenceInput.Path} is {reference.shape[2]}x{reference.shape[1]}");
    }

    private static EvalInputException CountMismatch(List<EvalInput> inputs, List<IEnumerator<Tensor>> enumerators, Tensor?[] frames, long t)
    {
        // Count what the longer inputs still hold so the message gives real numbers.
        var counts = new long[inputs.Count];
        for (int i = 0; i < inputs.Count; i++)
        {
            counts[i] = t;
            if (frames[i] is null) continue;
            counts[i]++;
            while (enumerators[i].MoveNext()) { enumerators[i].Current.Dispose(); counts[i]++; }
        }
        var parts = inputs.Select((inp, i) => $"{inp.Path} has {counts[i]}");
        return new EvalInputException($"frame count mismatch: {string.Join(", ", parts)} frames");
    }

    private static Tensor DefaultBicubic(Tensor lr, int scale)
    {
        using var scope = NewDisposeScope();
        var up = nn.functional.interpolate(lr.unsqueeze(0), size: [lr.shape[1] * scale, lr.shape[2] * scale], mode: InterpolationMode.Bicubic, align_corners: false);
        return up.squeeze(0).clamp(0, 1).MoveToOuterDisposeScope();
    }

    /// <summary>The square region with the most detail (Sobel energy of Y) in the reference frame.</summary>
    private static (int X, int Y, int S) ChooseCropRegion(Tensor reference, int cropSize)
    {
        using var scope = NewDisposeScope();
        int h = (int)reference.shape[1], w = (int)reference.shape[2];
        int s = Math.Max(8, Math.Min(cropSize, Math.Min(h, w)));
        var y = ColorSpace.RgbToY(reference.unsqueeze(0).to(ScalarType.Float32));
        var gx = y[.., .., .., 1..] - y[.., .., .., ..^1];
        var gy = y[.., .., 1.., ..] - y[.., .., ..^1, ..];
        var energy = nn.functional.pad(gx.square(), [0, 1, 0, 0]) + nn.functional.pad(gy.square(), [0, 0, 0, 1]);
        int stride = Math.Max(1, s / 4);
        var pooled = nn.functional.avg_pool2d(energy, s, stride);
        long pw = pooled.shape[3];
        long best = pooled.flatten().argmax().item<long>();
        int bx = (int)(best % pw) * stride, by = (int)(best / pw) * stride;
        return (bx, by, s);
    }

    private static CropSet MakeCrops(EvalReport report, long t, (int X, int Y, int S) r, List<Tensor> rows, Tensor? gt)
    {
        var tiles = new List<(string, Tensor)>();
        Tensor Cut(Tensor f) => f[.., r.Y..(r.Y + r.S), r.X..(r.X + r.S)].to(CPU).clone();
        for (int i = 0; i < rows.Count; i++) tiles.Add((report.Rows[i].Name, Cut(rows[i])));
        if (gt is not null) tiles.Add(("ground truth", Cut(gt)));
        return new CropSet(t, r.X, r.Y, r.S, tiles);
    }
}

/// <summary>Inputs that cannot be evaluated together (frame count or size mismatch, no frames, bad scale).</summary>
public sealed class EvalInputException(string message) : Exception(message);
