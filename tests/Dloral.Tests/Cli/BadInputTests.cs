using Dloral.Tests.Support;

namespace Dloral.Tests.Cli;

/// <summary>Each bad input: exit 2, a message naming the file, nothing left behind.</summary>
public sealed class BadInputTests : IDisposable
{
    private readonly TestMedia _media = new();

    public void Dispose() => _media.Dispose();

    private void AssertRefused(string input, string nameInMessage, string output, string? because = null)
    {
        var before = CliRunner.Listing(_media.Dir);
        var r = CliRunner.Run("upscale", input, "-o", output, "--scale", "2");
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains(nameInMessage, r.Stderr);
        if (because is not null) Assert.Contains(because, r.Stderr, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("internal error", r.Stderr);
        Assert.False(File.Exists(output) || Directory.Exists(output), $"{output} was left behind");
        Assert.Equal(before, CliRunner.Listing(_media.Dir));
    }

    [Fact]
    public void Missing_input() => AssertRefused(_media.PathOf("nope.mp4"), "nope.mp4", _media.PathOf("o1.mp4"), "no such file");

    [Fact]
    public void Text_file_named_mp4()
    {
        var input = _media.PathOf("text.mp4");
        File.WriteAllText(input, "this is not a video\n");
        AssertRefused(input, "text.mp4", _media.PathOf("o2.mp4"));
    }

    [Fact]
    public void Truncated_mp4()
    {
        var full = _media.Video("full.mp4", 64, 48, frames: 30);
        var bytes = File.ReadAllBytes(full);
        var input = _media.PathOf("truncated.mp4");
        File.WriteAllBytes(input, bytes[..(bytes.Length / 2)]);
        AssertRefused(input, "truncated.mp4", _media.PathOf("o3.mp4"));
    }

    [Fact]
    public void Video_with_zero_frames()
    {
        var input = _media.PathOf("empty.mp4");
        TestMedia.Ffmpeg("-f", "lavfi", "-i", "testsrc2=s=32x24:r=25", "-frames:v", "0", "-c:v", "libx264", "-pix_fmt", "yuv420p", input);
        AssertRefused(input, "empty.mp4", _media.PathOf("o4.mp4"));
    }

    [Fact]
    public void Unwritable_output_folder()
    {
        var input = _media.Image("img.png", 16, 12);
        // A regular file where a folder should be: unwritable even for root.
        var blocker = _media.PathOf("blocker");
        File.WriteAllText(blocker, "");
        var r = CliRunner.Run("upscale", input, "-o", Path.Combine(blocker, "out.png"), "--scale", "2");
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains("out.png", r.Stderr);
        Assert.Equal("", File.ReadAllText(blocker));
    }

    [Fact]
    public void Unknown_model_scale_and_options_are_bad_arguments()
    {
        var input = _media.Image("m.png", 16, 12);
        var r = CliRunner.Run("upscale", input, "-o", _media.PathOf("m2.png"), "--model", "nosuchmodel");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("nosuchmodel", r.Stderr);
        Assert.Contains("bicubic", r.Stderr); // lists what is available

        r = CliRunner.Run("upscale", input, "-o", _media.PathOf("m3.png"), "--scale", "5");
        Assert.Equal(2, r.ExitCode);
        r = CliRunner.Run("upscale", input, "-o", _media.PathOf("m4.png"), "--start", "soon");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--start", r.Stderr);
        r = CliRunner.Run("upscale", input);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--output", r.Stderr);
        r = CliRunner.Run("upscale", input, "-o", _media.PathOf("m5.png"), "--device", "cuda");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("CUDA", r.Stderr);
        Assert.False(File.Exists(_media.PathOf("m5.png")));
    }
}
