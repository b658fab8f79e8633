using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dloral.Training;

/// <summary>The loss terms of one step (unweighted values and the weighted total).</summary>
/// <summary>Unweighted loss terms of a step. <paramref name="Baseline"/> is the do-nothing answer's loss: L2 of the bicubic
/// input against the ground truth (the flow stage: the end-point error of zero flow) — the model must get below it.</summary>
public sealed record LossTerms(double L2, double Perceptual, double Temporal, double Csd, double Total, double Baseline = 0);

/// <summary>One line of train_log.jsonl. <paramref name="Step"/> counts completed steps (1 = the first);
/// <paramref name="ScheduleStep"/> = Step − 1 is the reference's global_step whose λs and stage were used.</summary>
public sealed record StepRecord(
    long Step, long ScheduleStep, string Stage, string Phase, double? Progress,
    double LambdaL2, double LambdaLpips, double LambdaCsd, double LambdaTemporal,
    double LossL2, double LossPerceptual, double LossTemporal, double LossCsd, double Loss,
    double GradNorm, double Lr, double Seconds, double LossBaseline = 0)
{
    public string Type => "step";
}

/// <summary>One validation line of train_log.jsonl; <c>PsnrBicubic</c> is the bicubic input's PSNR on the same frames, the do-nothing answer the model must beat.</summary>
public sealed record ValidationRecord(long Step, double Psnr, double Ssim, double WarpingError, double Loss, string? Sample, double PsnrBicubic = double.NaN)
{
    public string Type => "validation";
}

/// <summary>
/// Training logs: one JSON object per line in <c>train_log.jsonl</c> (appended, flushed per line, so a resumed run
/// continues the same file) and a console progress line with speed and ETA.
/// </summary>
public sealed class TrainingLog : IDisposable
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private readonly StreamWriter? _file;
    private readonly TextWriter? _console;

    public TrainingLog(string? jsonlPath, TextWriter? console)
    {
        if (jsonlPath is not null)
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(jsonlPath))!);
            _file = new StreamWriter(new FileStream(jsonlPath, FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
        }
        _console = console;
        Path = jsonlPath;
    }

    public string? Path { get; }

    public void Write(StepRecord record)
    {
        _file?.WriteLine(JsonSerializer.Serialize(record, JsonOptions));
        _sumLoss += record.Stage == "flow" ? record.Loss : record.LossL2; // the term the baseline is comparable with
        _sumBaseline += record.LossBaseline;
        _sumSeconds += record.Seconds;
        _count++;
    }

    // Per-clip losses vary tenfold with the content: the progress line shows the means since the last line. So does the
    // speed: a consistency step costs ~3× a base step, so an average since the start would promise an ETA far too early.
    private double _sumLoss, _sumBaseline, _sumSeconds;
    private int _count;

    public void Write(ValidationRecord record)
    {
        _file?.WriteLine(JsonSerializer.Serialize(record, JsonOptions));
        _console?.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"validation @ {record.Step}: PSNR {record.Psnr:F2} dB (bicubic {record.PsnrBicubic:F2}, {record.Psnr - record.PsnrBicubic:+0.00;-0.00}), SSIM {record.Ssim:F4}, warping error {record.WarpingError:F5}, loss {record.Loss:F5}{(record.Sample is null ? "" : ", sample " + record.Sample)}"));
    }

    /// <summary>Prints a progress line: step, stage, losses, s/step and ETA to <paramref name="totalSteps"/> (at the speed of the
    /// steps since the last line).</summary>
    public void Progress(StepRecord r, long totalSteps)
    {
        if (_console is null) return;
        double perStep = _count > 0 ? _sumSeconds / _count : r.Seconds;
        var eta = TimeSpan.FromSeconds(Math.Max(0, totalSteps - r.Step) * perStep);
        _console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"step {r.Step}/{totalSteps} [{r.Phase}] loss {r.Loss:F5} (l2 {r.LossL2:F5} perc {r.LossPerceptual:F4} temp {r.LossTemporal:F5} csd {r.LossCsd:F4}) mean {(r.Stage == "flow" ? "epe" : "l2")} {MeanOf(_sumLoss)} vs input {MeanOf(_sumBaseline)} {perStep:F2} s/step ETA {eta:hh\\:mm\\:ss}"));
        _sumLoss = _sumBaseline = _sumSeconds = 0;
        _count = 0;
    }

    private string MeanOf(double sum) => _count == 0 ? "-" : (sum / _count).ToString("F5", CultureInfo.InvariantCulture);

    public void Message(string text)
    {
        if (_console is null) return;
        lock (_console) _console.WriteLine(text); // also called from data-loader threads
    }

    public void Dispose() => _file?.Dispose();
}
