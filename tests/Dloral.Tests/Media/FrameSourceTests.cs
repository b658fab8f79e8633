using Dloral.Media;
using Dloral.Tests.Support;

namespace Dloral.Tests.Media;

public sealed class FrameSourceTests : IDisposable
{
    private readonly TestMedia _media = new();

    public void Dispose() => _media.Dispose();

    [Fact]
    public void Video_frames_have_the_probed_size_count_and_rate()
    {
        string path = _media.Video("clip.mp4", width: 64, height: 48, rate: "30000/1001", frames: 9);

        using var source = FrameSource.Open(path);
        var frames = source.ToList();

        Assert.Equal(9, frames.Count);
        Assert.Equal(9, source.ExpectedFrames);
        Assert.Equal(new Rational(30000, 1001), source.FrameRate);
        Assert.All(frames, f => Assert.Equal((64, 48, 8, 64 * 48 * 3), (f.Width, f.Height, f.Depth, f.Data.Length)));
        Assert.Equal(Enumerable.Range(0, 9).Select(i => (long)i), frames.Select(f => f.Index));
        Assert.Equal(8 * 1001 / 30000.0, frames[^1].Timestamp!.Value, 6);
        // testsrc2 moves: frames a third of a second apart differ.
        Assert.NotEqual(frames[0].Data, frames[^1].Data);
        Assert.Empty(source.Warnings);
    }

    [Fact]
    public void Start_and_max_frames_select_a_range()
    {
        string path = _media.Video("clip.mp4", rate: "10", frames: 20);
        using var all = FrameSource.Open(path);
        var reference = all.ToList();

        using var part = FrameSource.Open(path, new FrameSourceOptions { Start = TimeSpan.FromSeconds(0.5), MaxFrames = 4 });
        var frames = part.ToList();

        Assert.Equal(4, part.ExpectedFrames);
        Assert.Equal(4, frames.Count);
        Assert.Equal(reference[5].Data, frames[0].Data);
        Assert.Equal(reference[8].Data, frames[3].Data);
    }

    [Fact]
    public void Start_past_the_end_is_a_clear_error()
    {
        string path = _media.Video("clip.mp4", rate: "10", frames: 5);

        using var source = FrameSource.Open(path, new FrameSourceOptions { Start = TimeSpan.FromSeconds(30) });
        Assert.Equal(0, source.ExpectedFrames);
        var ex = Assert.Throws<MediaException>(() => source.ToList());

        Assert.Equal(path, ex.FilePath);
        Assert.Contains("no video frames after the start time", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Animated_gif_is_a_video_of_rgb_frames()
    {
        string path = _media.PathOf("anim.gif");
        TestMedia.Ffmpeg("-f", "lavfi", "-i", "testsrc2=s=32x24:r=10", "-frames:v", "4", path);

        using var source = FrameSource.Open(path);
        var frames = source.ToList();

        Assert.Equal(MediaKind.Video, source.Info.Kind);
        Assert.Equal(4, frames.Count);
        Assert.All(frames, f => Assert.Equal(32 * 24 * 3, f.Data.Length));
        // ffmpeg decodes GIF to bgra (GIF may have a transparent colour): it is flattened to RGB with the alpha warning.
        Assert.Equal("bgra", source.Info.PixelFormat);
        Assert.Contains(source.Warnings, w => w.Contains("alpha", StringComparison.Ordinal));
    }

    [Fact]
    public void Rotation_is_applied_to_frames()
    {
        string plain = _media.Video("plain.mp4", width: 64, height: 48, frames: 2);
        string rotated = _media.Video("rot.mp4", width: 64, height: 48, frames: 2, rotate: 90);

        using var p = FrameSource.Open(plain);
        using var r = FrameSource.Open(rotated);
        var a = p.First();
        var b = r.First();

        Assert.Equal((48, 64), (b.Width, b.Height));
        // Rotated by a quarter turn one way or the other: the top-left corner of the original lands on a corner of the rotated frame.
        float corner = a.Sample(0, 0, 0);
        var candidates = new[] { b.Sample(47, 0, 0), b.Sample(0, 63, 0) };
        Assert.Contains(candidates, c => Math.Abs(c - corner) < 0.05f);
    }

    [Fact]
    public void Ten_bit_input_is_read_as_sixteen_bit_with_its_precision()
    {
        string path = _media.Video("ten.mkv", codec: "libx265", pixelFormat: "yuv420p10le", frames: 2, width: 64, height: 48);

        using var source = FrameSource.Open(path);
        var frame = source.First();

        Assert.Equal(16, source.Depth);
        Assert.Equal(16, frame.Depth);
        Assert.Equal(64 * 48 * 6, frame.Data.Length);
        // 8-bit data widened to 16 bits would have value = v * 257 (low byte == high byte); 10-bit data does not.
        int notEightBit = 0;
        for (int i = 0; i < frame.Data.Length; i += 2)
            if (frame.Data[i] != frame.Data[i + 1]) notEightBit++;
        Assert.True(notEightBit > frame.Data.Length / 8, $"only {notEightBit} samples carry more than 8 bits");
    }

    [Fact]
    public void Grayscale_input_becomes_rgb_with_a_warning()
    {
        string path = _media.Image("gray.png", pixelFormat: "gray");
        var warnings = new List<string>();

        using var source = FrameSource.Open(path, new FrameSourceOptions { OnWarning = warnings.Add });
        var frame = Assert.Single(source.ToList());

        Assert.Contains(warnings, w => w.Contains("grayscale", StringComparison.Ordinal) && w.Contains("gray.png", StringComparison.Ordinal));
        Assert.Equal(warnings, source.Warnings);
        Assert.Equal(8, frame.Depth);
        bool anyNonBlack = false;
        for (int i = 0; i < frame.Data.Length; i += 3)
        {
            Assert.Equal(frame.Data[i], frame.Data[i + 1]);
            Assert.Equal(frame.Data[i], frame.Data[i + 2]);
            anyNonBlack |= frame.Data[i] != 0;
        }
        Assert.True(anyNonBlack);
    }

    [Fact]
    public void Rgba_png_becomes_rgb_with_a_warning()
    {
        string rgb = _media.Image("rgb.png");
        string rgba = _media.Image("rgba.png", pixelFormat: "rgba");

        using var a = FrameSource.Open(rgb);
        using var b = FrameSource.Open(rgba);
        var fa = a.Single();
        var fb = b.Single();

        Assert.Contains(b.Warnings, w => w.Contains("alpha", StringComparison.Ordinal));
        Assert.Equal(32 * 24 * 3, fb.Data.Length);
        // testsrc2 is opaque: dropping alpha leaves exactly the RGB picture.
        Assert.Equal(fa.Data, fb.Data);
    }

    [Fact]
    public void Sixteen_bit_png_keeps_sixteen_bits()
    {
        string path = _media.Image("deep.png", pixelFormat: "rgb48be");

        using var source = FrameSource.Open(path);
        var frame = source.Single();

        Assert.Equal(16, frame.Depth);
        Assert.Equal(32 * 24 * 6, frame.Data.Length);
    }

    [Fact]
    public void Image_folder_is_read_in_natural_order()
    {
        string folder = _media.PathOf("frames");
        Directory.CreateDirectory(folder);
        // Distinct solid colours so the order is visible in the pixels; names sort wrongly as plain strings.
        var colours = new (string Name, byte R)[] { ("frame_1.png", 10), ("frame_2.png", 60), ("frame_10.png", 120), ("frame_11.png", 200) };
        foreach (var (name, r) in colours) _media.SolidImage(Path.Combine("frames", name), $"0x{r:X2}0000");

        using var source = FrameSource.Open(folder);
        var frames = source.ToList();

        Assert.Equal(MediaKind.ImageFolder, source.Info.Kind);
        // Colour sources pass through YUV, so allow a few levels of rounding.
        Assert.Equal(colours.Length, frames.Count);
        for (int i = 0; i < colours.Length; i++) Assert.InRange(frames[i].Data[0], colours[i].R - 4, colours[i].R + 4);
        Assert.Equal(new Rational(25, 1), source.FrameRate);
    }

    [Fact]
    public void Image_folder_with_a_differently_sized_image_names_that_image()
    {
        string folder = _media.PathOf("mixed");
        Directory.CreateDirectory(folder);
        _media.SolidImage(Path.Combine("mixed", "a1.png"), "red", 16, 12);
        string odd = _media.SolidImage(Path.Combine("mixed", "a2.png"), "red", 20, 12);

        using var source = FrameSource.Open(folder);
        var ex = Assert.Throws<MediaException>(() => source.ToList());

        Assert.Equal(odd, ex.FilePath);
        Assert.Contains("size differs", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Variable_frame_rate_is_converted_to_constant_rate_with_a_warning()
    {
        string path = _media.VariableFrameRateVideo(fastFrames: 15, slowFrames: 15);

        using var source = FrameSource.Open(path);
        var frames = source.ToList();

        Assert.Contains(source.Warnings, w => w.Contains("variable frame rate", StringComparison.Ordinal));
        Assert.Equal(source.Info.AverageFrameRate, source.FrameRate);
        // 1.5 s at the average rate (20 fps): about 30 frames on the constant grid.
        Assert.InRange(frames.Count, 29, 31);
        Assert.InRange(source.ExpectedFrames, 29, 31);
    }

    [Fact]
    public void Frames_are_produced_lazily_and_not_retained()
    {
        string path = _media.Video("long.mp4", width: 160, height: 120, rate: "25", frames: 120);
        var alive = new List<WeakReference>();

        using (var source = FrameSource.Open(path))
        {
            long consumed = 0;
            foreach (var frame in source)
            {
                consumed++;
                // Pull-based: the source has produced exactly what was consumed, nothing buffered ahead.
                Assert.Equal(consumed, source.FramesRead);
                alive.Add(new WeakReference(frame.Data));
            }
            Assert.Equal(120, consumed);
        }
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        // The source keeps no frame: every buffer is collectable once the consumer drops it.
        Assert.True(alive.Count(w => w.IsAlive) <= 1, $"{alive.Count(w => w.IsAlive)} of 120 frames still alive");
    }

    [Fact]
    public void Disposing_mid_stream_stops_the_decoder()
    {
        string path = _media.Video("clip.mp4", rate: "25", frames: 50);

        using var source = FrameSource.Open(path);
        var firstThree = source.Take(3).ToList();

        Assert.Equal(3, firstThree.Count);
        Assert.Equal(3, source.FramesRead);
    }

    [Fact]
    public void Cancellation_stops_reading()
    {
        string path = _media.Video("clip.mp4", rate: "25", frames: 50);
        using var cts = new CancellationTokenSource();

        using var source = FrameSource.Open(path, new FrameSourceOptions { CancellationToken = cts.Token });
        Assert.ThrowsAny<OperationCanceledException>(() =>
        {
            foreach (var f in source)
                if (f.Index == 2) cts.Cancel();
        });
        Assert.Equal(3, source.FramesRead);
    }
}
