using System.CommandLine;
using System.Globalization;
using Dloral.Media;
using Dloral.Training.Degradations;

namespace Dloral.Cli.Commands;

/// <summary><c>dloral degrade INPUT -o OUTPUT --preset dloral|light|FILE.json</c>: make realistic low-resolution test clips.</summary>
public static class DegradeCommand
{
    public static Command Create(CliConsole console)
    {
        var input = new Argument<string>("INPUT") { Description = "High-resolution video, image or folder of images." };
        var output = new Option<string>("--output", "-o")
        {
            Description = "Output: .mkv = lossless FFV1 (default codec there), .mp4/.mov = video, .png = image, a folder = PNG frames.",
            Required = true,
        };
        var preset = new Option<string>("--preset", "-p")
        {
            Description = "Degradation: 'dloral' (the reference's Real-ESRGAN second order + H.264/H.265), 'light', or a JSON file (see configs/degradations/).",
            DefaultValueFactory = _ => "dloral",
        };
        var scale = new Option<int>("--scale", "-s") { Description = "Downscale factor: the output is INPUT / scale.", DefaultValueFactory = _ => 4 };
        var seed = new Option<long>("--seed") { Description = "Random seed: the same seed gives the same output bytes.", DefaultValueFactory = _ => 0 };
        var chunk = new Option<int>("--chunk") { Description = "Frames per H.264/H.265 round trip.", DefaultValueFactory = _ => 16 };
        var start = new Option<string?>("--start") { Description = "Start this far into the input: seconds (12.5), mm:ss or hh:mm:ss.ms." };
        var frames = new Option<long?>("--frames", "-n") { Description = "Degrade at most this many frames." };
        var codec = new Option<string?>("--codec") { Description = "Output video codec: ffv1 (default for .mkv), h264 (default otherwise, CRF 0), h265." };
        codec.AcceptOnlyFromAmong("h264", "h265", "ffv1");
        var crf = new Option<int?>("--crf") { Description = "Output CRF for h264/h265 (default 0: the output adds no artifacts of its own beyond 4:2:0)." };
        var overwrite = new Option<bool>("--overwrite", "-y") { Description = "Replace OUTPUT if it exists." };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Print nothing but errors." };

        var command = new Command("degrade", "Degrade a video, image or folder into a realistic low-resolution clip (blur, resize, noise, JPEG, video codec): the same degradation for every frame, fresh noise per frame.")
        {
            input, output, preset, scale, seed, chunk, start, frames, codec, crf, overwrite, quiet,
        };
        command.SetAction((parse, ct) => CommandErrors.RunAsync(console, ct, async token =>
        {
            bool isQuiet = parse.GetValue(quiet);
            int sf = parse.GetValue(scale);
            if (sf < 1) throw new UsageException($"--scale {sf}: must be >= 1");
            DegradationConfig config;
            try
            {
                config = DegradationConfig.FromPreset(parse.GetValue(preset)!);
            }
            catch (Exception e) when (e is ArgumentException or InvalidDataException)
            {
                throw new UsageException(e.Message);
            }
            var options = new DegradeJobOptions
            {
                Scale = sf,
                Config = config,
                Seed = parse.GetValue(seed),
                ChunkFrames = Math.Max(1, parse.GetValue(chunk)),
                Start = parse.GetValue(start) is { } s ? TimeParser.Parse(s, "--start") : null,
                MaxFrames = parse.GetValue(frames),
                Overwrite = parse.GetValue(overwrite),
                OutputCodec = parse.GetValue(codec) switch { "h264" => VideoCodec.H264, "h265" => VideoCodec.H265, "ffv1" => VideoCodec.Ffv1, _ => null },
                OutputCrf = parse.GetValue(crf),
                OnWarning = isQuiet ? null : w => console.Error.WriteLine("warning: " + w),
            };
            string inPath = parse.GetValue(input)!, outPath = parse.GetValue(output)!;
            var result = await Task.Run(() => DegradeJob.Run(inPath, outPath, options, token), token).ConfigureAwait(false);
            if (!isQuiet)
            {
                var p = result.Plan;
                console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"wrote {result.OutputPath}: {result.Frames} frame(s) {result.Width}x{result.Height} (x1/{sf}, seed {options.Seed}) in {result.Elapsed.TotalSeconds:F1} s; " +
                    $"blur {p.Kernel1.Type}/{p.Kernel1.Size}, noise {(p.Noise1.Gaussian ? $"gauss σ{p.Noise1.Sigma:F1}" : $"poisson {p.Noise1.PoissonScale:F2}")}, " +
                    $"jpeg {p.JpegQuality1}/{p.JpegQuality2}, video {(p.Video is { } v ? $"{v.Codec} crf {v.Crf}" : "none")}"));
            }
            return ExitCodes.Ok;
        }));
        return command;
    }
}
