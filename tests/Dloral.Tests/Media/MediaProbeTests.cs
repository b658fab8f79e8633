using Dloral.Media;
using Dloral.Tests.Support;

namespace Dloral.Tests.Media;

public sealed class MediaProbeTests : IDisposable
{
    private readonly TestMedia _media = new();

    public void Dispose() => _media.Dispose();

    [Fact]
    public void Probe_reads_exact_rational_rate_count_size_audio_and_subtitles()
    {
        string path = _media.Video("ntsc.mp4", width: 64, height: 48, rate: "30000/1001", frames: 12, audio: true, subtitles: true);

        var info = MediaProbe.Probe(path);

        Assert.Equal(MediaKind.Video, info.Kind);
        Assert.Equal(new Rational(30000, 1001), info.FrameRate);
        Assert.Equal("30000/1001", info.FrameRate.ToString());
        Assert.Equal(12, info.FrameCount);
        Assert.True(info.FrameCountExact);
        Assert.Equal((64, 48), (info.Width, info.Height));
        Assert.Equal("yuv420p", info.PixelFormat);
        Assert.Equal(8, info.BitDepth);
        Assert.False(info.IsVariableFrameRate);
        Assert.Equal(0, info.Rotation);
        Assert.InRange(info.DurationSeconds, 12 * 1001 / 30000.0 - 0.05, 12 * 1001 / 30000.0 + 0.05);
        var audio = Assert.Single(info.AudioStreams);
        Assert.Equal("aac", audio.Codec);
        Assert.Equal(48000, audio.SampleRate);
        var sub = Assert.Single(info.SubtitleStreams);
        Assert.Equal("mov_text", sub.Codec);
        Assert.True(sub.IsText);
    }

    [Fact]
    public void Probe_counts_frames_of_matroska_without_frame_count_header()
    {
        string path = _media.Video("clip.mkv", rate: "25", frames: 7);

        var info = MediaProbe.Probe(path);

        Assert.Equal(7, info.FrameCount);
        Assert.True(info.FrameCountExact);
        Assert.Equal(new Rational(25, 1), info.FrameRate);
        Assert.Empty(info.AudioStreams);
        Assert.Empty(info.SubtitleStreams);
    }

    [Fact]
    public void Millisecond_rounded_matroska_timestamps_are_not_variable_frame_rate()
    {
        // 29.97 fps in Matroska's 1 ms timebase: frame gaps alternate 33 and 34 ms, which is still CFR.
        var ntsc = MediaProbe.Probe(_media.Video("ntsc.mkv", rate: "30000/1001", frames: 40));
        var vfr = MediaProbe.Probe(_media.VariableFrameRateVideo("vfr.mkv"));

        Assert.False(ntsc.IsVariableFrameRate);
        Assert.Equal(new Rational(30000, 1001), ntsc.FrameRate);
        Assert.Equal(40, ntsc.FrameCount);
        Assert.True(vfr.IsVariableFrameRate);
    }

    [Fact]
    public void Probe_reports_ten_bit_depth()
    {
        string path = _media.Video("ten.mkv", codec: "libx265", pixelFormat: "yuv420p10le", frames: 3);

        var info = MediaProbe.Probe(path);

        Assert.Equal("yuv420p10le", info.PixelFormat);
        Assert.Equal(10, info.BitDepth);
    }

    [Fact]
    public void Probe_applies_rotation_to_the_displayed_size()
    {
        string path = _media.Video("rot.mp4", width: 64, height: 48, frames: 3, rotate: 90);

        var info = MediaProbe.Probe(path);

        Assert.Contains(info.Rotation, new[] { 90, 270 });
        Assert.Equal((48, 64), (info.Width, info.Height));
        Assert.Equal((64, 48), (info.CodedWidth, info.CodedHeight));
    }

    [Fact]
    public void Probe_detects_variable_frame_rate()
    {
        string path = _media.VariableFrameRateVideo();

        var info = MediaProbe.Probe(path);

        Assert.True(info.IsVariableFrameRate);
        Assert.Equal(30, info.FrameCount);
        Assert.NotNull(info.AverageFrameRate);
        Assert.InRange(info.AverageFrameRate!.Value.ToDouble(), 19, 21);
    }

    [Fact]
    public void Probe_recognises_images_with_gray_and_alpha()
    {
        var png = MediaProbe.Probe(_media.Image("rgb.png"));
        var gray = MediaProbe.Probe(_media.Image("gray.png", pixelFormat: "gray"));
        var rgba = MediaProbe.Probe(_media.Image("rgba.png", pixelFormat: "rgba"));
        var jpg = MediaProbe.Probe(_media.Image("photo.jpg", pixelFormat: "yuvj420p"));

        Assert.Equal(MediaKind.Image, png.Kind);
        Assert.Equal(1, png.FrameCount);
        Assert.Equal((32, 24), (png.Width, png.Height));
        Assert.False(png.IsGray);
        Assert.False(png.HasAlpha);
        Assert.True(gray.IsGray);
        Assert.True(rgba.HasAlpha);
        Assert.Equal(MediaKind.Image, jpg.Kind);
    }

    [Fact]
    public void Probe_lists_an_image_folder_in_natural_order()
    {
        string folder = _media.PathOf("frames");
        Directory.CreateDirectory(folder);
        foreach (var n in new[] { 10, 2, 1, 11 }) _media.Image(Path.Combine("frames", $"frame_{n}.png"));
        File.WriteAllText(Path.Combine(folder, "notes.txt"), "not an image");

        var info = MediaProbe.Probe(folder, new Rational(24000, 1001));

        Assert.Equal(MediaKind.ImageFolder, info.Kind);
        Assert.Equal(4, info.FrameCount);
        Assert.Equal(new Rational(24000, 1001), info.FrameRate);
        Assert.Equal(["frame_1.png", "frame_2.png", "frame_10.png", "frame_11.png"], info.Files.Select(Path.GetFileName));
    }
}
