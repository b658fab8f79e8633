using System.CommandLine;
using System.Globalization;
using Dloral.Media;
using Dloral.Pipeline;
using Dloral.Pipeline.Compact;

namespace Dloral.Cli.Commands;

/// <summary><c>dloral upscale INPUT -o OUTPUT</c>: the main command.</summary>
public static class UpscaleCommand
{
    public static Command Create(CliConsole console)
    {
        var input = new Argument<string>("INPUT") { Description = "Video file (anything ffmpeg reads), image (PNG/JPEG/WebP/BMP) or folder of images (natural order: frame_2 before frame_10)." };
        var output = new Option<string>("--output", "-o")
        {
            Description = "Output: .mp4/.mkv/.mov = video (frame rate, audio and subtitles kept), .png/.jpg = one image, a folder (existing, trailing '/' or no extension) = PNG frames.",
            Required = true,
        };
        var scale = new Option<int>("--scale", "-s") { Description = "Magnification: 2, 3 or 4 (1 = no resize, measures the pipeline).", DefaultValueFactory = _ => 4 };
        scale.AcceptOnlyFromAmong("1", "2", "3", "4");
        var model = new Option<string?>("--model", "-m")
        {
            Description = "Model name (see 'dloral models') or model file path. Default: compact (the compact DLoRAL model, x4 only) when its " +
                          "weights are found (models/compact/dloral_compact.safetensors beside the program or in the repository, or compact.safetensors " +
                          $"in the user model folder; {CompactModelFile.EnvironmentVariable}=FILE overrides), else bicubic. Also: bicubic, lanczos, identity, " +
                          "a compact weights file, a file from 'dloral convert', or a Stable Diffusion 2.1 folder with --checkpoint.",
        };
        var codec = new Option<string>("--codec") { Description = "Video codec: h264 (default, CRF 18), h265, or ffv1 (lossless, best in .mkv).", DefaultValueFactory = _ => "h264" };
        codec.AcceptOnlyFromAmong("h264", "h265", "ffv1");
        var crf = new Option<int?>("--crf") { Description = "Quality for h264/h265: 0 (lossless) .. 51 (worst); default 18 (h264), 20 (h265)." };
        var preset = new Option<string?>("--preset") { Description = "x264/x265 speed preset (default medium): faster presets encode quicker at a larger file size." };
        preset.AcceptOnlyFromAmong("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo");
        var start = new Option<string?>("--start") { Description = "Start this far into the input: seconds (12.5), mm:ss or hh:mm:ss.ms." };
        var frames = new Option<long?>("--frames", "-n") { Description = "Process at most this many frames." };
        var fps = new Option<string?>("--fps") { Description = "Frame rate for an image-folder input, exact: 24, 25, 30000/1001 (default 25). Videos keep their own rate." };
        var overwrite = new Option<bool>("--overwrite", "-y") { Description = "Replace OUTPUT if it exists (otherwise an existing output is an error)." };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Print nothing but errors." };
        var progress = new Option<string>("--progress")
        {
            Description = "Progress display: auto (bar when stderr is a terminal, else nothing), bar, json (one JSON object per line on stdout: frame, total, fps, eta_seconds), none.",
            DefaultValueFactory = _ => "auto",
        };
        progress.AcceptOnlyFromAmong("auto", "bar", "json", "none");
        var threads = new Option<int?>("--threads") { Description = "CPU threads for the tensor engine (default: all cores)." };
        var device = new Option<string>("--device") { Description = "cpu (default) or cuda[:N].", DefaultValueFactory = _ => "cpu" };

        var command = new Command("upscale", "Upscale a video, an image or a folder of images. Writes to a temporary file beside OUTPUT and renames it at the end: on any failure or Ctrl-C nothing is left behind.")
        {
            input, output, scale, model, codec, crf, preset, start, frames, fps, overwrite, quiet, progress, threads, device,
        };
        var dloral = DloralCliOptions.AddTo(command);
        command.SetAction((parse, ct) => CommandErrors.RunAsync(console, ct, async token =>
        {
            bool isQuiet = parse.GetValue(quiet);
            var options = new UpscaleOptions
            {
                Scale = parse.GetValue(scale),
                Model = parse.GetValue(model) ?? DefaultModel(parse.GetValue(scale), isQuiet ? null : console.Error),
                Codec = parse.GetValue(codec) switch { "h265" => VideoCodec.H265, "ffv1" => VideoCodec.Ffv1, _ => VideoCodec.H264 },
                Crf = parse.GetValue(crf),
                Preset = parse.GetValue(preset),
                Start = parse.GetValue(start) is { } s ? TimeParser.Parse(s, "--start") : null,
                MaxFrames = parse.GetValue(frames),
                ImageFrameRate = parse.GetValue(fps) is { } f
                    ? Rational.TryParse(f) is { Numerator: > 0 } rate ? rate : throw new UsageException($"--fps: '{f}' is not a frame rate (use 25, 23.976 or 24000/1001)")
                    : null,
                Overwrite = parse.GetValue(overwrite),
                Threads = parse.GetValue(threads),
                Device = parse.GetValue(device)!,
                OnWarning = isQuiet ? null : w => console.Error.WriteLine("warning: " + w),
                Dloral = dloral.Read(parse, line => console.Error.WriteLine(line)),
            };
            string inPath = parse.GetValue(input)!, outPath = parse.GetValue(output)!;
            var mode = parse.GetValue(progress) switch
            {
                "bar" => ProgressMode.Bar,
                "json" => ProgressMode.Json,
                "none" => ProgressMode.None,
                _ => isQuiet || !console.ErrorIsTerminal ? ProgressMode.None : ProgressMode.Bar,
            };

            UpscaleResult result = mode switch
            {
                ProgressMode.Bar => await ProgressBar.RunAsync(console.Error, "upscale",
                    p => Upscaler.UpscaleAsync(inPath, outPath, options, p, token)).ConfigureAwait(false),
                ProgressMode.Json => await Upscaler.UpscaleAsync(inPath, outPath, options, new JsonLinesProgress(console.Out), token).ConfigureAwait(false),
                _ => await Upscaler.UpscaleAsync(inPath, outPath, options, null, token).ConfigureAwait(false),
            };
            if (!isQuiet)
            {
                double fps = result.Elapsed.TotalSeconds > 0 ? result.Frames / result.Elapsed.TotalSeconds : 0;
                console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"wrote {result.OutputPath}: {result.Frames} frame(s) {result.Width}x{result.Height} ({options.Model} x{options.Scale}) in {result.Elapsed.TotalSeconds:F1} s ({fps:F1} fps)"));
            }
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>
    /// The model when --model is not given: the compact DLoRAL model when its weights are found and --scale is its
    /// scale, else bicubic with a one-line note saying why (none when <paramref name="note"/> is null, i.e. --quiet).
    /// </summary>
    internal static string DefaultModel(int scale, TextWriter? note, CompactModelLocation? found = null)
    {
        var location = found ?? CompactModelFile.Locate();
        if (location.Path is { } path)
        {
            int modelScale = CompactModelFile.ScaleOf(path);
            if (modelScale == scale) return CompactModelFile.Name;
            note?.WriteLine($"note: the compact DLoRAL model upscales x{modelScale} only; using bicubic for --scale {scale}");
            return "bicubic";
        }
        note?.WriteLine($"note: {location.NotFoundMessage}; using bicubic");
        return "bicubic";
    }
}
