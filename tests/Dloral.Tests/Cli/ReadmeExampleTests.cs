using Dloral.Pipeline;
using Dloral.Tests.Support;

namespace Dloral.Tests.Cli;

/// <summary>The README's library example, compiled and run; the README must contain it verbatim.</summary>
public sealed class ReadmeExampleTests : IDisposable
{
    private readonly TestMedia _media = new();

    public void Dispose() => _media.Dispose();

    // README-EXAMPLE-BEGIN
    static async Task UpscaleFileAsync(string input, string output)
    {
        var progress = new Progress<UpscaleProgress>(p =>
            Console.Error.WriteLine($"{p.FramesDone}/{p.TotalFrames} frames, {p.FramesPerSecond:F1} fps, ETA {p.Eta}"));
        using var cts = new CancellationTokenSource(TimeSpan.FromHours(1)); // or cancel on Ctrl-C
        UpscaleResult result = await Upscaler.UpscaleAsync(input, output,
            new UpscaleOptions { Scale = 2, Model = "lanczos", Overwrite = true }, progress, cts.Token);
        Console.WriteLine($"{result.Frames} frames, {result.Width}x{result.Height} -> {result.OutputPath}");
    }
    // README-EXAMPLE-END

    private static string ExampleSource()
    {
        var lines = File.ReadAllLines(Path.Combine(GoldenData.RepoRoot, "tests", "Dloral.Tests", "Cli", "ReadmeExampleTests.cs"));
        int begin = Array.FindIndex(lines, l => l.Contains("README-EXAMPLE-BEGIN", StringComparison.Ordinal));
        int end = Array.FindIndex(lines, l => l.Contains("README-EXAMPLE-END", StringComparison.Ordinal));
        return string.Join("\n", lines[(begin + 1)..end].Select(l => l.Length >= 4 ? l[4..] : l.TrimStart()));
    }

    [Fact]
    public void Readme_contains_the_example_verbatim()
    {
        var readme = File.ReadAllText(Path.Combine(GoldenData.RepoRoot, "README.md")).Replace("\r\n", "\n");
        Assert.Contains(ExampleSource(), readme);
    }

    [Fact]
    public async Task Example_runs_and_writes_the_upscaled_video()
    {
        var input = _media.Video("lib.mp4", 32, 24, rate: "24000/1001", frames: 4, audio: true);
        var output = _media.PathOf("lib_x2.mp4");
        await UpscaleFileAsync(input, output);
        var video = TestMedia.FirstStream(output, "video");
        Assert.Equal(64, video.GetProperty("width").GetInt32());
        Assert.Equal(48, video.GetProperty("height").GetInt32());
        Assert.Equal("24000/1001", video.GetProperty("r_frame_rate").GetString());
        Assert.Equal(1, TestMedia.CountStreams(output, "audio"));
    }
}
