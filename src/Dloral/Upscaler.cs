using System.Diagnostics;
using Dloral.Checkpoints;
using Dloral.Media;
using Dloral.Pipeline;
using TorchSharp;

namespace Dloral;

/// <summary>
/// The library's front door: upscale a video, an image or a folder of images into a video, an
/// image or a folder, keeping frame rate, audio and subtitles. Output is written atomically: nothing
/// appears at <c>output</c> unless the run succeeds.
/// </summary>
/// <example>
/// <code>
/// var result = await Upscaler.UpscaleAsync("in.mp4", "out.mp4", new UpscaleOptions { Scale = 4 });
/// </code>
/// </example>
public static class Upscaler
{
    /// <summary>
    /// Runs the whole pipeline on a worker thread. Throws <see cref="UpscaleOptionsException"/> for
    /// unusable options, <see cref="MediaException"/> for unreadable input or an unwritable/existing
    /// output, <see cref="OperationCanceledException"/> when cancelled (the partial output is removed).
    /// </summary>
    public static Task<UpscaleResult> UpscaleAsync(string input, string output, UpscaleOptions? options = null,
        IProgress<UpscaleProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(input);
        ArgumentException.ThrowIfNullOrEmpty(output);
        options ??= new UpscaleOptions();
        return Task.Factory.StartNew(() => Run(input, output, options, progress, cancellationToken),
            cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>The blocking form of <see cref="UpscaleAsync"/>.</summary>
    public static UpscaleResult Run(string input, string output, UpscaleOptions options,
        IProgress<UpscaleProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var clock = Stopwatch.StartNew();
        var device = ParseDevice(options.Device);
        if (options.Threads is { } threads)
        {
            if (threads < 1) throw new UpscaleOptionsException($"threads must be at least 1, got {threads}", "threads");
            TorchRuntime.Initialize(threads);
        }
        else TorchRuntime.Initialize();
        // Every frame frees and reallocates the same frame-sized buffers: keeping them in the heap halves the compact
        // model's time per frame on CPU (bench/results/compact-upscale.md: 0.96 → 2.02 fps fp32), for ~330 MB more peak memory.
        TorchRuntime.ReuseFreedMemory();
        if (options.Scale is < 1 or > 4) throw new UpscaleOptionsException($"scale must be 2, 3 or 4 (1 for no resize), got {options.Scale}", "scale");
        if (options.MaxFrames is < 1) throw new UpscaleOptionsException($"frames must be at least 1, got {options.MaxFrames}", "frames");
        if (options.Start is { } s && s < TimeSpan.Zero) throw new UpscaleOptionsException($"start must not be negative, got {s}", "start");
        if (options.Crf is { } crf && (crf < 0 || crf > 51)) throw new UpscaleOptionsException($"crf must be between 0 and 51, got {crf}", "crf");

        using var upscaler = DloralModelSource.TryCreate(options.Model, options.Dloral with { Scale = options.Scale, Device = device })
            ?? ModelCatalog.Default.Create(options.Model, options.Scale, device);
        // Cheap checks first, input before output, so the message names the real problem.
        if (!File.Exists(input) && !Directory.Exists(input)) throw new MediaException(input, "no such file or folder");
        OutputFile.Validate(output, input, options.Overwrite);

        var warnings = new List<string>();
        void Warn(string w) { lock (warnings) warnings.Add(w); options.OnWarning?.Invoke(w); }
        if (upscaler is DloralUpscaler && options.Dloral.DType == torch.ScalarType.BFloat16 && device.type == DeviceType.CPU
            && CpuFeatures.Current.HasNativeBFloat16 == false)
            Warn($"this CPU ({CpuFeatures.Current.Describe()}) has no avx512_bf16 or amx_bf16 instructions: bfloat16 is emulated and runs many times slower than float32 here; drop --dtype bfloat16");

        using var source = FrameSource.Open(input, new FrameSourceOptions
        {
            Start = options.Start,
            MaxFrames = options.MaxFrames,
            ImageFrameRate = options.ImageFrameRate,
            OnWarning = Warn,
            CancellationToken = cancellationToken,
        });
        var writerOptions = FrameWriterOptions.MatchSource(source) with
        {
            Codec = options.Codec,
            Crf = options.Crf,
            Preset = options.Preset ?? "medium",
            Overwrite = options.Overwrite,
            OnWarning = Warn,
            CancellationToken = cancellationToken,
        };
        using var sink = FrameWriter.Open(output, writerOptions);
        var job = new VideoUpscaleJob(upscaler, device);
        long frames = job.Run(source, sink, progress, cancellationToken);
        return new UpscaleResult(sink.OutputPath, sink.Kind, frames, source.Width * upscaler.Scale, source.Height * upscaler.Scale,
            clock.Elapsed, warnings.ToArray());
    }

    /// <summary>"cpu", "cuda" or "cuda:N" → a device, checking that it is usable.</summary>
    public static torch.Device ParseDevice(string device)
    {
        var d = (device ?? "cpu").Trim().ToLowerInvariant();
        if (d == "cpu") return torch.CPU;
        if (d == "cuda" || d.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!torch.cuda.is_available())
                throw new UpscaleOptionsException($"device '{device}': CUDA is not available (this build ships the CPU libtorch; install a CUDA libtorch package to use a GPU)", "device");
            return torch.device(d);
        }
        throw new UpscaleOptionsException($"device must be 'cpu' or 'cuda[:N]', got '{device}'", "device");
    }
}
