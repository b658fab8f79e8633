using Dloral.Media;
using Dloral.Tests.Support;

namespace Dloral.Tests.Media;

public sealed class FrameWriterTests : IDisposable
{
    private readonly TestMedia _media = new();

    public void Dispose() => _media.Dispose();

    /// <summary>Reads <paramref name="input"/> and writes every frame to <paramref name="output"/> with the source's rate, audio and subtitles.</summary>
    private static (IReadOnlyList<string> ReaderWarnings, IReadOnlyList<string> WriterWarnings) Copy(
        string input, string output, FrameSourceOptions? read = null, Func<FrameWriterOptions, FrameWriterOptions>? tweak = null)
    {
        using var source = FrameSource.Open(input, read);
        var options = FrameWriterOptions.MatchSource(source);
        if (tweak is not null) options = tweak(options);
        using var writer = FrameWriter.Open(output, options);
        foreach (var frame in source) writer.Write(frame);
        writer.Complete();
        return (source.Warnings, writer.Warnings);
    }

    [Fact]
    public void Round_trip_keeps_frame_count_size_exact_rate_and_audio_duration()
    {
        string input = _media.Video("in.mp4", width: 64, height: 48, rate: "30000/1001", frames: 15, audio: true);
        string output = _media.PathOf("out.mp4");

        Copy(input, output);

        var inInfo = MediaProbe.Probe(input);
        var outInfo = MediaProbe.Probe(output);
        Assert.Equal(new Rational(30000, 1001), outInfo.FrameRate);
        Assert.Equal(inInfo.FrameRate, outInfo.FrameRate);
        Assert.Equal(15, outInfo.FrameCount);
        Assert.Equal((64, 48), (outInfo.Width, outInfo.Height));
        Assert.Equal("h264", outInfo.VideoCodec);
        Assert.Equal("yuv420p", outInfo.PixelFormat);
        var audio = Assert.Single(outInfo.AudioStreams);
        Assert.Equal("aac", audio.Codec);
        double frame = 1001 / 30000.0;
        Assert.InRange(TestMedia.StreamDuration(output, "audio"),
            TestMedia.StreamDuration(input, "audio") - frame, TestMedia.StreamDuration(input, "audio") + frame);
        Assert.InRange(TestMedia.StreamDuration(output, "video"), 15 * frame - frame, 15 * frame + frame);
        // Nothing but the output is left beside it.
        Assert.Equal(["in.mp4", "out.mp4"], Directory.GetFileSystemEntries(_media.Dir).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void H264_output_keeps_colours_through_the_yuv_conversion()
    {
        string input = _media.Video("in.mkv", width: 64, height: 48, rate: "25", frames: 3, codec: "ffv1", pixelFormat: "rgb24");
        string output = _media.PathOf("out.mp4");

        Copy(input, output);

        using var a = FrameSource.Open(input);
        using var b = FrameSource.Open(output);
        var fa = a.First();
        var fb = b.First();
        // Same BT.709 matrix on the way in and out: only 4:2:0 chroma and CRF 18 losses remain (a wrong matrix shifts colours by 10+ levels).
        double mean = fa.Data.Zip(fb.Data, (x, y) => Math.Abs(x - y)).Average();
        Assert.True(mean < 6, $"mean abs error {mean:0.00} levels");
    }

    [Fact]
    public void Anamorphic_pixel_aspect_ratio_is_kept()
    {
        string input = _media.PathOf("dvd.mp4");
        TestMedia.Ffmpeg("-f", "lavfi", "-i", "testsrc2=s=72x48:r=25", "-vf", "setsar=8/9", "-frames:v", "3",
            "-c:v", "libx264", "-preset", "ultrafast", input);
        string output = _media.PathOf("out.mkv");

        Copy(input, output);

        Assert.Equal(new Rational(8, 9), MediaProbe.Probe(input).SampleAspectRatio);
        Assert.Equal(new Rational(8, 9), MediaProbe.Probe(output).SampleAspectRatio);
        Assert.Null(MediaProbe.Probe(_media.Video("square.mp4", frames: 1)).SampleAspectRatio);
    }

    [Fact]
    public void Awkward_file_names_are_not_read_as_protocols_or_patterns()
    {
        Directory.CreateDirectory(_media.PathOf("100%"));
        string input = _media.Video(Path.Combine("100%", "-in:put %d.mp4"), frames: 3, audio: true);
        string video = _media.PathOf(Path.Combine("100%", "pipe:1 %03d.mp4"));
        string folder = _media.PathOf(Path.Combine("100%", "frames %d"));

        Copy(input, video);
        Copy(input, folder);

        Assert.Equal(3, MediaProbe.Probe(video).FrameCount);
        Assert.Equal(1, TestMedia.CountStreams(video, "audio"));
        Assert.Equal(3, Directory.GetFiles(folder, "frame_*.png").Length);
        Assert.Equal(3, MediaProbe.Probe(folder).FrameCount);
    }

    [Fact]
    public void Video_starting_after_audio_keeps_its_delay()
    {
        string plain = _media.Video("plain.mp4", rate: "25", frames: 10);
        string input = _media.PathOf("late.mkv");
        TestMedia.Ffmpeg("-itsoffset", "0.2", "-i", plain, "-f", "lavfi", "-t", "0.6", "-i", "sine=f=440:r=48000",
            "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "libopus", input);
        string output = _media.PathOf("out.mkv");

        Copy(input, output);

        static double Start(string path, string type) =>
            double.Parse(TestMedia.FirstStream(path, type).GetProperty("start_time").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        double inDelay = Start(input, "video") - Start(input, "audio");
        double outDelay = Start(output, "video") - Start(output, "audio");
        Assert.InRange(inDelay, 0.15, 0.25);
        Assert.InRange(outDelay, inDelay - 0.02, inDelay + 0.02);
    }

    [Fact]
    public void Subtitles_are_copied_and_converted_for_the_container()
    {
        string input = _media.Video("in.mp4", frames: 10, audio: true, subtitles: true);
        string mp4 = _media.PathOf("out.mp4");
        string mkv = _media.PathOf("out.mkv");

        Copy(input, mp4);
        var (_, mkvWarnings) = Copy(input, mkv);

        Assert.Equal("mov_text", TestMedia.FirstStream(mp4, "subtitle").GetProperty("codec_name").GetString());
        Assert.Equal("subrip", TestMedia.FirstStream(mkv, "subtitle").GetProperty("codec_name").GetString());
        Assert.Equal(1, TestMedia.CountStreams(mkv, "audio"));
        Assert.Empty(mkvWarnings);
        // The cue text survives.
        var (_, srt, _) = TestMedia.Run("ffmpeg", ["-v", "error", "-i", mkv, "-map", "0:s:0", "-f", "srt", "-"]);
        Assert.Contains("Hello", srt, StringComparison.Ordinal);
        Assert.Contains("World", srt, StringComparison.Ordinal);
    }

    [Fact]
    public void Audio_the_container_cannot_hold_is_reencoded_with_a_warning()
    {
        string input = _media.Video("in.mkv", frames: 10, audio: true, audioCodec: "pcm_s16le");
        string output = _media.PathOf("out.mp4");

        var (_, warnings) = Copy(input, output);

        Assert.Equal("alac", TestMedia.FirstStream(output, "audio").GetProperty("codec_name").GetString());
        Assert.Contains(warnings, w => w.Contains("pcm_s16le", StringComparison.Ordinal) && w.Contains("ALAC", StringComparison.Ordinal));
    }

    [Fact]
    public void Odd_size_is_kept_exactly_with_yuv444_and_a_warning()
    {
        string input = _media.Video("odd.mkv", width: 97, height: 61, rate: "25", frames: 4, codec: "ffv1", pixelFormat: "rgb24");
        string output = _media.PathOf("odd.mp4");

        var (_, warnings) = Copy(input, output);

        var info = MediaProbe.Probe(output);
        Assert.Equal((97, 61), (info.Width, info.Height));
        Assert.Equal(4, info.FrameCount);
        Assert.Equal("yuv444p", info.PixelFormat);
        Assert.Contains(warnings, w => w.Contains("97x61", StringComparison.Ordinal) && w.Contains("4:4:4", StringComparison.Ordinal));
    }

    [Fact]
    public void Ffv1_round_trip_is_bit_exact_in_8_and_16_bits()
    {
        string input = _media.Video("in.mp4", frames: 5, rate: "24000/1001");
        string eight = _media.PathOf("eight.mkv");
        Copy(input, eight, tweak: o => o with { Codec = VideoCodec.Ffv1 });

        using (var a = FrameSource.Open(input))
        using (var b = FrameSource.Open(eight))
        {
            var fa = a.ToList();
            var fb = b.ToList();
            Assert.Equal(fa.Count, fb.Count);
            for (int i = 0; i < fa.Count; i++) Assert.Equal(fa[i].Data, fb[i].Data);
            Assert.Equal(new Rational(24000, 1001), b.FrameRate);
        }

        string deep = _media.Image("deep.png", pixelFormat: "rgb48be");
        string deepOut = _media.PathOf("deep.mkv");
        Copy(deep, deepOut, tweak: o => o with { Codec = VideoCodec.Ffv1 });
        using var c = FrameSource.Open(deep);
        using var d = FrameSource.Open(deepOut);
        Assert.Equal(16, d.Depth);
        Assert.Equal(c.Single().Data, d.Single().Data);
    }

    [Fact]
    public void Sixteen_bit_frames_encode_as_ten_bit_h264()
    {
        string input = _media.Video("ten.mkv", codec: "libx265", pixelFormat: "yuv420p10le", frames: 3);
        string output = _media.PathOf("ten.mp4");

        Copy(input, output);

        var info = MediaProbe.Probe(output);
        Assert.Equal("yuv420p10le", info.PixelFormat);
        Assert.Equal(10, info.BitDepth);
        Assert.Equal(3, info.FrameCount);
    }

    [Fact]
    public void Folder_output_gets_numbered_lossless_png_frames()
    {
        string input = _media.Video("in.mp4", frames: 3, audio: true);
        string folder = _media.PathOf("frames");

        var (_, warnings) = Copy(input, folder);

        Assert.Contains(warnings, w => w.Contains("no audio", StringComparison.Ordinal));
        Assert.Equal(["frame_000001.png", "frame_000002.png", "frame_000003.png"],
            Directory.GetFiles(folder).Select(Path.GetFileName).Order());
        using var a = FrameSource.Open(input);
        using var b = FrameSource.Open(folder);
        Assert.Equal(a.Select(f => f.Data), b.Select(f => f.Data));
        Assert.DoesNotContain(Directory.GetFileSystemEntries(_media.Dir), e => Path.GetFileName(e).StartsWith('.'));
        Assert.Equal(1, TestMedia.CountStreams(input, "audio"));
    }

    [Fact]
    public void Single_image_outputs_png_exactly_and_jpeg()
    {
        string input = _media.Image("in.png", 40, 30);
        string png = _media.PathOf("out.png");
        string jpg = _media.PathOf("out.jpg");

        Copy(input, png);
        Copy(input, jpg);

        using var a = FrameSource.Open(input);
        using var b = FrameSource.Open(png);
        Assert.Equal(a.Single().Data, b.Single().Data);
        var j = MediaProbe.Probe(jpg);
        Assert.Equal(MediaKind.Image, j.Kind);
        Assert.Equal("mjpeg", j.VideoCodec);
        Assert.Equal((40, 30), (j.Width, j.Height));
    }

    [Fact]
    public void Single_image_output_refuses_a_second_frame_and_leaves_nothing()
    {
        string input = _media.Video("in.mp4", frames: 3);
        string output = _media.PathOf("out.png");

        var ex = Assert.Throws<MediaException>(() => Copy(input, output));

        Assert.Equal(output, ex.FilePath);
        Assert.Contains("one frame", ex.Message, StringComparison.Ordinal);
        Assert.Equal(["in.mp4"], Directory.GetFileSystemEntries(_media.Dir).Select(Path.GetFileName));
    }

    [Fact]
    public void Variable_frame_rate_input_becomes_constant_rate_with_audio_in_sync()
    {
        string input = _media.VariableFrameRateVideo(fastFrames: 15, slowFrames: 15);
        string output = _media.PathOf("out.mp4");

        var (readerWarnings, _) = Copy(input, output);

        Assert.Contains(readerWarnings, w => w.Contains("variable frame rate", StringComparison.Ordinal));
        var info = MediaProbe.Probe(output);
        Assert.False(info.IsVariableFrameRate);
        Assert.Equal(MediaProbe.Probe(input).AverageFrameRate, info.FrameRate);
        double frame = 1 / info.FrameRate.ToDouble();
        double inVideo = TestMedia.StreamDuration(input, "video");
        double inAudio = TestMedia.StreamDuration(input, "audio");
        Assert.InRange(inAudio, 1.5 - 0.03, 1.5 + 0.03);
        // Same span on the constant grid, audio untouched: in sync within one frame.
        Assert.InRange(TestMedia.StreamDuration(output, "video"), inVideo - frame, inVideo + frame);
        Assert.InRange(TestMedia.StreamDuration(output, "audio"), inAudio - frame, inAudio + frame);
    }

    [Fact]
    public void Start_and_frame_limit_cut_audio_to_the_same_span()
    {
        string input = _media.Video("in.mp4", rate: "25", frames: 50, audio: true);
        string output = _media.PathOf("cut.mp4");

        Copy(input, output, new FrameSourceOptions { Start = TimeSpan.FromSeconds(0.4), MaxFrames = 20 });

        var info = MediaProbe.Probe(output);
        Assert.Equal(20, info.FrameCount);
        double audio = TestMedia.StreamDuration(output, "audio");
        Assert.InRange(audio, 0.8 - 0.04, 0.8 + 0.04 + 1024 / 48000.0);
    }

    [Fact]
    public void Writing_through_tensors_round_trips_the_pixels()
    {
        string input = _media.Image("in.png", 20, 14);
        string output = _media.PathOf("out.png");

        using (var source = FrameSource.Open(input))
        using (var writer = FrameWriter.Open(output, FrameWriterOptions.MatchSource(source)))
        {
            foreach (var frame in source)
            {
                using var t = FrameTensors.ToTensor(frame);
                writer.Write(FrameTensors.ToFrame(t, frame.Depth, frame.Index));
            }
            writer.Complete();
        }

        using var a = FrameSource.Open(input);
        using var b = FrameSource.Open(output);
        Assert.Equal(a.Single().Data, b.Single().Data);
    }
}
