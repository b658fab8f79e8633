using Dloral.Media;
using Dloral.Training.Degradations;

namespace Dloral.Tests.Training;

public class DegradeJobTests
{
    private static byte[] DecodeAll(string path) =>
        FfmpegProcess.Run(FfmpegProcess.FfmpegPath, ["-v", "error", "-i", path, "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], [], "decode output");

    [Fact]
    public void Degrading_a_video_writes_every_frame_at_one_quarter_size_keeps_audio_and_is_seeded()
    {
        using var media = new MediaFolder();
        MediaFolder.Ffmpeg("-f", "lavfi", "-i", "testsrc2=size=128x96:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-frames:v", "10", "-t", "0.4", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", media.Path("in.mp4"));
        var cfg = DegradationConfig.Light();
        cfg.VideoCompression.Prob = 1;
        var options = new DegradeJobOptions { Scale = 4, Config = cfg, Seed = 3, ChunkFrames = 4 };

        var r1 = DegradeJob.Run(media.Path("in.mp4"), media.Path("a.mkv"), options);
        var r2 = DegradeJob.Run(media.Path("in.mp4"), media.Path("b.mkv"), options);
        var r3 = DegradeJob.Run(media.Path("in.mp4"), media.Path("c.mkv"), options with { Seed = 4 });

        Assert.Equal(10, r1.Frames);
        Assert.Equal((32, 24), (r1.Width, r1.Height));
        var info = MediaProbe.Probe(media.Path("a.mkv"));
        Assert.Equal((32, 24), (info.Width, info.Height));
        Assert.Equal(10, info.FrameCount);
        Assert.True(info.HasAudio, "the input's audio must be kept");
        byte[] a = DecodeAll(media.Path("a.mkv")), b = DecodeAll(media.Path("b.mkv")), c = DecodeAll(media.Path("c.mkv"));
        Assert.Equal(10 * 32 * 24 * 3, a.Length);
        Assert.Equal(a, b); // FFV1 is lossless: same seed, same bytes
        Assert.NotEqual(a, c);
        // PNG folder output works too
        var r4 = DegradeJob.Run(media.Path("in.mp4"), media.Path("frames") + "/", options with { MaxFrames = 3 });
        Assert.Equal(3, Directory.GetFiles(media.Path("frames"), "*.png").Length);
        Assert.Equal(3, r4.Frames);
    }
}

public class DegradeCommandTests
{
    /// <summary>Runs `dloral degrade ...` through the command object (registered in Program by the cli owner).</summary>
    private static (int Code, string Err) Run(params string[] args)
    {
        var err = new StringWriter();
        var console = Dloral.Cli.CliConsole.Capture(new StringWriter(), err);
        var root = new System.CommandLine.RootCommand("test") { Dloral.Cli.Commands.DegradeCommand.Create(console) };
        int code = root.Parse(["degrade", .. args]).InvokeAsync(new System.CommandLine.InvocationConfiguration { Output = new StringWriter(), Error = err }).GetAwaiter().GetResult();
        return (code, err.ToString());
    }

    [Fact]
    public void Degrade_command_writes_the_clip_and_reports_bad_presets_and_existing_outputs()
    {
        using var media = new MediaFolder();
        MediaFolder.Ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25", "-frames:v", "5", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", media.Path("in.mp4"));
        var (code, err) = Run(media.Path("in.mp4"), "-o", media.Path("lr.mkv"), "--preset", "light", "--seed", "2");
        Assert.True(code == 0, err);
        Assert.Contains("5 frame(s) 24x16", err);
        Assert.Equal((24, 16, 5L), (MediaProbe.Probe(media.Path("lr.mkv")).Width, MediaProbe.Probe(media.Path("lr.mkv")).Height, MediaProbe.Probe(media.Path("lr.mkv")).FrameCount));

        (code, err) = Run(media.Path("in.mp4"), "-o", media.Path("lr.mkv"));
        Assert.Equal(2, code); // exists, no -y
        (code, err) = Run(media.Path("in.mp4"), "-o", media.Path("x.mkv"), "--preset", "nonsense");
        Assert.Equal(2, code);
        Assert.Contains("nonsense", err);
        File.WriteAllText(media.Path("bad.json"), """{ "jpeg_range": [95, 10] }""");
        (code, err) = Run(media.Path("in.mp4"), "-o", media.Path("y.mkv"), "--preset", media.Path("bad.json"));
        Assert.Equal(2, code);
        Assert.Contains("jpeg_range", err);
    }
}
