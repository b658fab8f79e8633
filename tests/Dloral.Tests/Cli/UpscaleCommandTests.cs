using System.Globalization;
using System.Text.Json;
using Dloral.Tests.Support;

namespace Dloral.Tests.Cli;

/// <summary>End-to-end <c>dloral upscale</c> runs on media made with ffmpeg's test sources.</summary>
public sealed class UpscaleCommandTests : IDisposable
{
    private readonly TestMedia _media = new();

    public void Dispose() => _media.Dispose();

    private static long FrameCount(string path)
    {
        var (code, stdout, err) = TestMedia.Run("ffprobe", ["-v", "error", "-count_frames", "-select_streams", "v:0",
            "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path]);
        Assert.True(code == 0, err);
        return long.Parse(stdout.Trim(), CultureInfo.InvariantCulture);
    }

    /// <summary>Decodes frame <paramref name="index"/> to rgb24 bytes.</summary>
    private static byte[] DecodeFrame(string path, int index)
    {
        string tmp = Path.Combine(Path.GetDirectoryName(path)!, $"frame{index}-{Guid.NewGuid():N}.rgb");
        TestMedia.Ffmpeg("-i", path, "-vf", $"select=eq(n\\,{index})", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", tmp);
        var bytes = File.ReadAllBytes(tmp);
        File.Delete(tmp);
        return bytes;
    }

    [Fact]
    public void Video_keeps_frame_count_exact_rate_and_audio_and_scales_the_size()
    {
        var input = _media.Video("clip.mp4", 64, 48, rate: "30000/1001", frames: 12, audio: true);
        var output = _media.PathOf("clip_x2.mp4");
        var r = CliRunner.Run("upscale", input, "-o", output, "--scale", "2", "--preset", "ultrafast");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("wrote", r.Stderr);

        var video = TestMedia.FirstStream(output, "video");
        Assert.Equal(128, video.GetProperty("width").GetInt32());
        Assert.Equal(96, video.GetProperty("height").GetInt32());
        Assert.Equal("30000/1001", video.GetProperty("r_frame_rate").GetString());
        Assert.Equal(12, FrameCount(output));
        Assert.Equal(1, TestMedia.CountStreams(output, "audio"));
        double frame = 1001.0 / 30000;
        Assert.InRange(TestMedia.StreamDuration(output, "audio"), TestMedia.StreamDuration(output, "video") - frame - 0.03, TestMedia.StreamDuration(output, "video") + frame + 0.03);
    }

    [Fact]
    public void Image_input_gives_an_image_scaled_by_three_with_lanczos()
    {
        var input = _media.Image("pic.png", 20, 14);
        var output = _media.PathOf("pic_x3.png");
        var r = CliRunner.Run("upscale", input, "-o", output, "--scale", "3", "--model", "lanczos");
        Assert.True(r.ExitCode == 0, r.ToString());
        var s = TestMedia.FirstStream(output, "video");
        Assert.Equal((60, 42), (s.GetProperty("width").GetInt32(), s.GetProperty("height").GetInt32()));
    }

    [Fact]
    public void Folder_output_gets_one_png_per_frame()
    {
        var input = _media.Video("five.mp4", 32, 24, rate: "25", frames: 5);
        var output = _media.PathOf("frames") + "/";
        var r = CliRunner.Run("upscale", input, "-o", output, "--scale", "2");
        Assert.True(r.ExitCode == 0, r.ToString());
        var pngs = Directory.GetFiles(output, "*.png");
        Assert.Equal(5, pngs.Length);
        var s = TestMedia.FirstStream(pngs[0], "video");
        Assert.Equal((64, 48), (s.GetProperty("width").GetInt32(), s.GetProperty("height").GetInt32()));
    }

    [Fact]
    public void Start_and_frames_select_the_right_frames_bit_exactly_through_the_identity_path()
    {
        // Lossless in and out (FFV1 RGB) + identity upscaler: output frame 0 must equal input frame 10.
        var input = _media.PathOf("lossless.mkv");
        TestMedia.Ffmpeg("-f", "lavfi", "-i", "testsrc2=s=48x32:r=25", "-frames:v", "20", "-c:v", "ffv1", "-pix_fmt", "bgr0", input);
        var output = _media.PathOf("cut.mkv");
        var r = CliRunner.Run("upscale", input, "-o", output, "--scale", "1", "--model", "identity", "--codec", "ffv1",
            "--start", "0.4", "--frames", "5");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(5, FrameCount(output));
        Assert.Equal(DecodeFrame(input, 10), DecodeFrame(output, 0));
        Assert.Equal(DecodeFrame(input, 14), DecodeFrame(output, 4));
    }

    [Fact]
    public void Progress_json_prints_one_parseable_object_per_frame()
    {
        var input = _media.Video("p.mp4", 32, 24, rate: "25", frames: 6);
        var r = CliRunner.Run("upscale", input, "-o", _media.PathOf("p_x2.mp4"), "--scale", "2", "--progress", "json", "--preset", "ultrafast");
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(6, lines.Length);
        for (int i = 0; i < lines.Length; i++)
        {
            using var doc = JsonDocument.Parse(lines[i]);
            var o = doc.RootElement;
            Assert.Equal(i + 1, o.GetProperty("frame").GetInt64());
            Assert.Equal(6, o.GetProperty("total").GetInt64());
            Assert.True(o.GetProperty("fps").GetDouble() >= 0);
            Assert.True(o.GetProperty("eta_seconds").GetDouble() >= 0);
        }
        Assert.Equal(0, JsonDocument.Parse(lines[^1]).RootElement.GetProperty("eta_seconds").GetDouble());
    }

    [Fact]
    public void Existing_output_is_refused_without_overwrite_and_replaced_with_it()
    {
        var input = _media.Image("a.png", 16, 12);
        var output = _media.PathOf("exists.png");
        File.WriteAllText(output, "keep me");
        var r = CliRunner.Run("upscale", input, "-o", output, "--scale", "2");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("exists.png", r.Stderr);
        Assert.Equal("keep me", File.ReadAllText(output));

        r = CliRunner.Run("upscale", input, "-o", output, "--scale", "2", "--overwrite");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(32, TestMedia.FirstStream(output, "video").GetProperty("width").GetInt32());
    }

    [Fact]
    public void Output_equal_to_input_is_refused()
    {
        var input = _media.Video("same.mp4", 32, 24, frames: 3);
        var before = File.ReadAllBytes(input);
        var r = CliRunner.Run("upscale", input, "-o", input, "--overwrite");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("same.mp4", r.Stderr);
        Assert.Equal(before, File.ReadAllBytes(input));
    }

    [Fact]
    public void Cancelling_returns_130_and_removes_the_partial_output()
    {
        var input = _media.Video("long.mp4", 64, 48, rate: "25", frames: 150);
        var output = _media.PathOf("long_x4.mp4");
        var before = CliRunner.Listing(_media.Dir);
        using var cts = new CancellationTokenSource();
        // Cancel from inside the run, once a few frames have been written (like Ctrl-C mid-way).
        var progress = new CancelAfterLines(3, cts);
        var r = CliRunner.Run(cts.Token, progress, "upscale", input, "-o", output, "--progress", "json");
        Assert.Equal(130, r.ExitCode);
        Assert.Contains("cancelled", r.Stderr);
        Assert.False(File.Exists(output));
        Assert.Equal(before, CliRunner.Listing(_media.Dir));
    }

    private sealed class CancelAfterLines(int lines, CancellationTokenSource cts) : StringWriter
    {
        private int _seen;
        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            if (++_seen == lines) cts.Cancel();
        }
    }
}

/// <summary>Inputs with odd sizes, extra streams, image folders and grayscale, end to end.</summary>
public sealed class UpscaleCommandInputKindTests : IDisposable
{
    private readonly TestMedia _media = new();

    public void Dispose() => _media.Dispose();

    [Fact]
    public void Odd_size_mkv_keeps_audio_and_subtitles()
    {
        // yuv444p: 4:2:0 cannot hold odd sizes; x3 keeps the output odd too (291x183).
        var srt = _media.PathOf("odd.srt");
        File.WriteAllText(srt, "1\n00:00:00,000 --> 00:00:00,200\nHello\n");
        var input = _media.PathOf("odd.mkv");
        TestMedia.Ffmpeg("-f", "lavfi", "-i", "testsrc=s=97x61:r=25", "-f", "lavfi", "-i", "sine=f=440:r=48000", "-i", srt,
            "-map", "0:v", "-map", "1:a", "-map", "2:s", "-t", "0.32", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p",
            "-c:a", "libopus", "-c:s", "srt", input);
        Assert.Equal(97, TestMedia.FirstStream(input, "video").GetProperty("width").GetInt32());
        var output = _media.PathOf("odd_x3.mkv");
        var r = CliRunner.Run("upscale", input, "-o", output, "--scale", "3", "--preset", "ultrafast");
        Assert.True(r.ExitCode == 0, r.ToString());
        var v = TestMedia.FirstStream(output, "video");
        Assert.Equal((291, 183), (v.GetProperty("width").GetInt32(), v.GetProperty("height").GetInt32()));
        Assert.Equal(1, TestMedia.CountStreams(output, "audio"));
        Assert.Equal(1, TestMedia.CountStreams(output, "subtitle"));
    }

    [Fact]
    public void Image_folder_is_read_in_natural_order()
    {
        var folder = Directory.CreateDirectory(_media.PathOf("seq")).FullName;
        // frame_10 must come after frame_2 (a plain string sort would put it second).
        File.Move(_media.SolidImage("a.png", "red"), Path.Combine(folder, "frame_1.png"));
        File.Move(_media.SolidImage("b.png", "lime"), Path.Combine(folder, "frame_2.png"));
        File.Move(_media.SolidImage("c.png", "blue"), Path.Combine(folder, "frame_10.png"));
        byte[] FirstPixel(string png)
        {
            var raw = _media.PathOf(Path.GetFileName(png) + ".rgb");
            TestMedia.Ffmpeg("-i", png, "-f", "rawvideo", "-pix_fmt", "rgb24", raw);
            return File.ReadAllBytes(raw)[..3];
        }
        var expected = new[] { "frame_1.png", "frame_2.png", "frame_10.png" }.Select(n => FirstPixel(Path.Combine(folder, n))).ToArray();
        Assert.NotEqual(expected[1], expected[2]);
        var output = _media.PathOf("seq.mkv");
        var r = CliRunner.Run("upscale", folder, "-o", output, "--scale", "1", "--model", "identity", "--codec", "ffv1", "--fps", "24000/1001");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("24000/1001", TestMedia.FirstStream(output, "video").GetProperty("r_frame_rate").GetString());
        var tmp = _media.PathOf("seq.rgb");
        TestMedia.Ffmpeg("-i", output, "-f", "rawvideo", "-pix_fmt", "rgb24", tmp);
        var rgb = File.ReadAllBytes(tmp);
        int frame = 16 * 12 * 3;
        Assert.Equal(3 * frame, rgb.Length);
        Assert.Equal(expected[0], rgb[..3]);
        Assert.Equal(expected[1], rgb[frame..(frame + 3)]);
        Assert.Equal(expected[2], rgb[(2 * frame)..(2 * frame + 3)]);
    }

    [Fact]
    public void Grayscale_input_is_converted_with_a_warning_unless_quiet()
    {
        var input = _media.Image("gray.png", 16, 12, pixelFormat: "gray");
        var r = CliRunner.Run("upscale", input, "-o", _media.PathOf("gray_x2.png"), "--scale", "2");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("warning", r.Stderr);
        var q = CliRunner.Run("upscale", input, "-o", _media.PathOf("gray_x2b.png"), "--scale", "2", "--quiet");
        Assert.Equal(0, q.ExitCode);
        Assert.Equal("", q.Stderr);
    }
}
