using System.CommandLine;
using Dloral.Media;

namespace Dloral.Cli.Commands;

/// <summary><c>dloral compare A B -o cmp.mp4 [--mode side-by-side|split]</c>: a video showing two results together.</summary>
public static class CompareCommand
{
    public static Command Create(CliConsole console)
    {
        var a = new Argument<string>("A") { Description = "First result (left): video, image or folder of images." };
        var b = new Argument<string>("B") { Description = "Second result (right), same size as A." };
        var output = new Option<string>("--output", "-o") { Description = "Output video (.mp4/.mkv/.mov), image or folder, like 'dloral upscale'.", Required = true };
        var mode = new Option<string>("--mode") { Description = "side-by-side: A | B next to each other; split: left half of A, right half of B, with a divider.", DefaultValueFactory = _ => "side-by-side" };
        mode.AcceptOnlyFromAmong("side-by-side", "split");
        var overwrite = new Option<bool>("--overwrite", "-y") { Description = "Replace OUTPUT if it exists." };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Print nothing but errors." };
        var command = new Command("compare", "Put two results side by side (or split screen) in one video, with A's frame rate and audio.")
        {
            a, b, output, mode, overwrite, quiet,
        };
        command.SetAction((parse, ct) => CommandErrors.RunAsync(console, ct, token =>
        {
            bool split = parse.GetValue(mode) == "split";
            bool isQuiet = parse.GetValue(quiet);
            string pathA = parse.GetValue(a)!, pathB = parse.GetValue(b)!, outPath = parse.GetValue(output)!;
            Action<string>? warn = isQuiet ? null : w => console.Error.WriteLine("warning: " + w);
            var readOptions = new FrameSourceOptions { Depth = 8, CancellationToken = token, OnWarning = warn };
            using var sourceA = FrameSource.Open(pathA, readOptions);
            using var sourceB = FrameSource.Open(pathB, readOptions);
            if (sourceA.Height != sourceB.Height || (split && sourceA.Width != sourceB.Width))
                throw new UsageException($"compare needs frames of the same size: {pathA} is {sourceA.Width}x{sourceA.Height}, {pathB} is {sourceB.Width}x{sourceB.Height}");
            var writerOptions = FrameWriterOptions.MatchSource(sourceA) with { Overwrite = parse.GetValue(overwrite), OnWarning = warn, CancellationToken = token };
            using var sink = FrameWriter.Open(outPath, writerOptions);
            using var ea = sourceA.GetEnumerator();
            using var eb = sourceB.GetEnumerator();
            long n = 0;
            while (ea.MoveNext())
            {
                if (!eb.MoveNext())
                {
                    warn?.Invoke($"{pathB} ended after {n} frame(s); {pathA} has more: the comparison stops there");
                    break;
                }
                sink.Write(split ? Split(ea.Current, eb.Current, n) : SideBySide(ea.Current, eb.Current, n));
                n++;
            }
            if (n > 0 && eb.MoveNext()) warn?.Invoke($"{pathA} ended after {n} frame(s); {pathB} has more: the comparison stops there");
            sink.Complete();
            if (!isQuiet) console.Error.WriteLine($"wrote {sink.OutputPath}: {n} frame(s), {(split ? "split screen" : "side by side")} ({pathA} | {pathB})");
            return Task.FromResult(ExitCodes.Ok);
        }));
        return command;
    }

    /// <summary>A | B: rows concatenated (8-bit RGB, same height).</summary>
    internal static VideoFrame SideBySide(VideoFrame a, VideoFrame b, long index)
    {
        int w = a.Width + b.Width, h = a.Height;
        var data = new byte[w * h * 3];
        for (int y = 0; y < h; y++)
        {
            Buffer.BlockCopy(a.Data, y * a.Stride, data, y * w * 3, a.Stride);
            Buffer.BlockCopy(b.Data, y * b.Stride, data, y * w * 3 + a.Stride, b.Stride);
        }
        return new VideoFrame(w, h, 8, data, index, a.Timestamp);
    }

    /// <summary>Left half of A, right half of B, a 2-pixel white divider at the middle.</summary>
    internal static VideoFrame Split(VideoFrame a, VideoFrame b, long index)
    {
        int w = a.Width, h = a.Height, half = w / 2;
        var data = (byte[])b.Data.Clone();
        for (int y = 0; y < h; y++)
        {
            Buffer.BlockCopy(a.Data, y * a.Stride, data, y * a.Stride, half * 3);
            for (int x = Math.Max(0, half - 1); x < Math.Min(w, half + 1); x++)
                data.AsSpan(y * a.Stride + x * 3, 3).Fill(255);
        }
        return new VideoFrame(w, h, 8, data, index, a.Timestamp);
    }
}
