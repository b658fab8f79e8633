using Dloral.Training.ClipDatasets;
using Dloral.Training.Degradations;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Tests.Training;

/// <summary>Photos and videos made with ffmpeg test sources in a temp folder, deleted afterwards.</summary>
public sealed class MediaFolder : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("dloral-clips-").FullName;

    public string Path(string name) => System.IO.Path.Combine(Dir, name);

    /// <summary>One frame of an ffmpeg lavfi source written to <paramref name="name"/> (format from the extension).</summary>
    public string Image(string name, string source)
    {
        Ffmpeg("-f", "lavfi", "-i", source, "-frames:v", "1", Path(name));
        return Path(name);
    }

    public string Video(string name, string source, int frames)
    {
        Ffmpeg("-f", "lavfi", "-i", source, "-frames:v", frames.ToString(), "-c:v", "libx264", "-preset", "ultrafast", "-g", "8", "-pix_fmt", "yuv420p", Path(name));
        return Path(name);
    }

    public static void Ffmpeg(params string[] args) =>
        FfmpegProcess.Run(FfmpegProcess.FfmpegPath, ["-hide_banner", "-v", "error", "-y", .. args], [], "test media");

    public void Dispose()
    {
        try { Directory.Delete(Dir, true); } catch (IOException) { }
    }
}

public class ClipDatasetTests
{
    /// <summary>Normalised correlation of a[y, x] with b[y+sy, x+sx] over the overlap (gray).</summary>
    private static double Correlation(Tensor a, Tensor b, int sx, int sy)
    {
        using var scope = NewDisposeScope();
        long h = a.shape[1], w = a.shape[2];
        int m = 6;
        var pa = a.mean([0])[m..(int)(h - m), m..(int)(w - m)];
        var pb = b.mean([0])[(m + sy)..(int)(h - m + sy), (m + sx)..(int)(w - m + sx)];
        pa = pa - pa.mean(); pb = pb - pb.mean();
        return (pa * pb).sum().item<float>() / Math.Sqrt(pa.square().sum().item<float>() * pb.square().sum().item<float>());
    }

    private static (int Sx, int Sy, double Best, double AtZero) BestShift(Tensor f0, Tensor f1)
    {
        (int, int, double) best = (0, 0, -2);
        for (int sy = -6; sy <= 6; sy++)
        for (int sx = -6; sx <= 6; sx++)
        {
            double c = Correlation(f1, f0, sx, sy);
            if (c > best.Item3) best = (sx, sy, c);
        }
        return (best.Item1, best.Item2, best.Item3, Correlation(f1, f0, 0, 0));
    }

    /// <summary>An ffmpeg geq pattern with detail everywhere (no flat areas, no repeats within a few px).</summary>
    internal static string Texture(int w, int h, int k) =>
        $"nullsrc=s={w}x{h},geq=r='128+60*sin(X/{k})*cos(Y/{k + 4})+60*sin((X+Y)/{k + 9})':g='128+90*sin(X/{k + 6}+Y/{k})':b='128+90*cos((X-2*Y)/{k + 2})',format=rgb24";

    [Fact]
    public void Image_clips_have_T_frames_related_by_the_camera_motion()
    {
        using var media = new MediaFolder();
        media.Image("a.png", Texture(480, 360, 7));
        media.Image("b.jpg", Texture(400, 300, 5));
        var opts = new ImageClipOptions
        {
            Frames = 4, CropSize = 96, ShiftRange = [2, 3.5], MaxAcceleration = 0, MaxRotationDeg = 0, MaxZoom = 0,
            PhotoScaleRange = [1, 1], Augment = false, Split = SplitPart.All,
        };
        var ds = new ImageClipDataset(media.Dir, opts);
        for (int seed = 0; seed < 4; seed++)
        {
            using var clip = ds.Get(seed % 2, seed);
            Assert.Equal(new long[] { 4, 3, 96, 96 }, clip.Hr.shape);
            var m = clip.Motion!;
            for (int t = 0; t + 1 < 4; t++)
            {
                var (sx, sy, best, atZero) = BestShift(clip.Hr[t], clip.Hr[t + 1]);
                Assert.True(clip.Hr[t].sub(clip.Hr[t + 1]).abs().mean().item<float>() > 0.005f, "frames must differ");
                // frame t+1 (p) = frame t (p + v): the content moves by -v
                Assert.True(Math.Abs(sx - m.Vx) <= 0.75 && Math.Abs(sy - m.Vy) <= 0.75, $"seed {seed}: shift ({sx},{sy}) vs motion ({m.Vx:F2},{m.Vy:F2})");
                Assert.True(best > 0.9, $"best correlation {best:F3}");
                Assert.True(best > atZero, "the shifted frame must match better than the unshifted one");
            }
        }

        // frame 0 is an exact crop of the photo at the recorded origin
        var photo = DecodedPhoto.TryDecode(media.Path("a.png"), 1, out _)!;
        using var c0 = ds.Get(0, 1);
        using var expected = photo.Crop(c0.CropOrigin.X, c0.CropOrigin.Y, 96, 96);
        float d0 = expected.sub(c0.Hr[0]).abs().max().item<float>();
        Assert.True(d0 < 1e-5f, $"frame 0 differs from the crop by {d0} (origin {c0.CropOrigin})");

        // with the default motion (acceleration, rotation, zoom) consecutive frames still align closely
        var ds2 = new ImageClipDataset(media.Dir, new ImageClipOptions { Frames = 3, CropSize = 96, Split = SplitPart.All, Augment = false });
        using var clip2 = ds2.Get(0, 7);
        Assert.True(BestShift(clip2.Hr[0], clip2.Hr[1]).Best > 0.85);
    }

    [Fact]
    public void Photo_cache_and_scaled_jpeg_decoding_give_the_same_clips_as_fresh_decodes()
    {
        using var media = new MediaFolder();
        media.Image("big.jpg", Texture(800, 600, 6));
        media.Image("b.png", Texture(300, 260, 8));
        var opts = new ImageClipOptions { Frames = 2, CropSize = 64, PhotoScaleRange = [0.2, 0.6], Split = SplitPart.All };
        var cached = new ImageClipDataset(media.Dir, opts);
        var fresh = new ImageClipDataset(media.Dir, new ImageClipOptions { Frames = 2, CropSize = 64, PhotoScaleRange = [0.2, 0.6], Split = SplitPart.All, CacheBytes = 0 });
        for (int round = 0; round < 2; round++)
        for (int seed = 0; seed < 6; seed++)
        {
            using var a = cached.Get(seed % 2, seed);
            using var b = fresh.Get(seed % 2, seed);
            Assert.True(a.Hr.eq(b.Hr).all().item<bool>(), $"seed {seed}: cached clip differs");
        }
        Assert.True(cached.Cache!.Hits >= 6, $"cache hits {cached.Cache.Hits}");
        Assert.Null(fresh.Cache);
        // JPEG DCT scaling: a 0.3 request decodes at 3/8 of 800x600
        var small = DecodedPhoto.TryDecode(media.Path("big.jpg"), 0.3, out _)!;
        Assert.Equal((800, 600), (small.OriginalWidth, small.OriginalHeight));
        Assert.True(small.Width < 800 && small.Width >= 240, $"scaled decode width {small.Width}");
    }

    [Fact]
    public void Dihedral_augmentation_is_the_same_for_every_frame_of_a_clip()
    {
        using var x = rand(2, 3, 5, 5);
        var outs = Enumerable.Range(0, 8).Select(k => Dihedral.Apply(x, k)).ToArray();
        for (int i = 0; i < 8; i++)
        {
            for (int j = i + 1; j < 8; j++) Assert.False(outs[i].eq(outs[j]).all().item<bool>(), $"transforms {i} and {j} coincide");
            using var back = Dihedral.Apply(outs[i], Dihedral.Inverse(i));
            Assert.True(back.eq(x).all().item<bool>());
        }

        using var media = new MediaFolder();
        media.Image("a.png", "mandelbrot=size=320x240");
        var plain = new ImageClipDataset(media.Dir, new ImageClipOptions { Frames = 3, CropSize = 64, Augment = false, Split = SplitPart.All });
        var aug = new ImageClipDataset(media.Dir, new ImageClipOptions { Frames = 3, CropSize = 64, Augment = true, Split = SplitPart.All });
        var seenIndices = new HashSet<int>();
        for (int seed = 0; seed < 40 && seenIndices.Count < 4; seed++)
        {
            using var a = aug.Get(0, seed);
            if (a.DihedralIndex == 0) continue;
            seenIndices.Add(a.DihedralIndex);
            using var p = plain.Get(0, seed);
            using var expected = Dihedral.Apply(p.Hr, a.DihedralIndex);
            Assert.True(expected.eq(a.Hr).all().item<bool>(), $"seed {seed}: augmented clip is not transform {a.DihedralIndex} of every frame");
            for (int t = 0; t < 3; t++)
            {
                using var ft = Dihedral.Apply(p.Hr[t], a.DihedralIndex);
                Assert.True(ft.eq(a.Hr[t]).all().item<bool>());
            }
        }
        Assert.True(seenIndices.Count >= 4);
    }

    [Fact]
    public void Corrupt_truncated_and_missing_images_are_skipped_with_a_warning()
    {
        using var media = new MediaFolder();
        media.Image("good1.png", "testsrc2=size=200x160");
        string good2 = media.Image("good2.jpg", "mandelbrot=size=200x160");
        File.WriteAllBytes(media.Path("garbage.jpg"), Enumerable.Range(0, 5000).Select(i => (byte)(i * 7)).ToArray());
        File.WriteAllBytes(media.Path("truncated.jpg"), File.ReadAllBytes(good2).Take(600).ToArray());
        string doomed = media.Image("vanishes.png", "testsrc2=size=200x160");

        var ds = new ImageClipDataset(media.Dir, new ImageClipOptions { Frames = 2, CropSize = 64, Split = SplitPart.All });
        var warnings = new List<string>();
        ds.Warning += w => { lock (warnings) warnings.Add(w); };
        File.Delete(doomed); // listed, then gone

        Assert.Equal(5, ds.Count);
        for (int i = 0; i < ds.Count; i++)
        {
            using var clip = ds.Get(i, i);
            Assert.Equal(new long[] { 2, 3, 64, 64 }, clip.Hr.shape);
            Assert.StartsWith("good", Path.GetFileName(clip.Source));
        }
        Assert.Equal(3, ds.Warnings.Count);
        Assert.Contains(ds.Warnings, w => w.Contains("garbage.jpg"));
        Assert.Contains(ds.Warnings, w => w.Contains("truncated.jpg"));
        Assert.Contains(ds.Warnings, w => w.Contains("vanishes.png"));
        Assert.Equal(3, warnings.Count);
    }

    [Fact]
    public void Validation_split_is_disjoint_from_training_stable_and_near_the_fraction()
    {
        var names = Enumerable.Range(0, 2000).Select(i => $"/some/dir/photo_{i:D5}.jpg").ToList();
        var train = ValidationSplit.Select(names, SplitPart.Train, 0.1);
        var val = ValidationSplit.Select(names, SplitPart.Validation, 0.1);
        Assert.Empty(train.Intersect(val));
        Assert.Equal(names.Count, train.Count + val.Count);
        Assert.InRange(val.Count, 150, 250);
        // stable: by file name only, independent of the folder and of the other files
        Assert.Equal(val.Select(Path.GetFileName), ValidationSplit.Select(names.Select(n => "/elsewhere/" + Path.GetFileName(n)).Reverse(), SplitPart.Validation, 0.1).Select(Path.GetFileName).Reverse());
        Assert.Equal(val, ValidationSplit.Select(names.Take(1000).Concat(names.Skip(1000)), SplitPart.Validation, 0.1));

        using var media = new MediaFolder();
        for (int i = 0; i < 12; i++) media.Image($"p{i:D2}.png", $"testsrc2=size=96x96:rate={i + 1}");
        var trainDs = new ImageClipDataset(media.Dir, new ImageClipOptions { CropSize = 32, Split = SplitPart.Train, ValidationFraction = 0.3 });
        var valDs = new ImageClipDataset(media.Dir, new ImageClipOptions { CropSize = 32, Split = SplitPart.Validation, ValidationFraction = 0.3 });
        Assert.Empty(trainDs.Files.Intersect(valDs.Files));
        Assert.Equal(12, trainDs.Count + valDs.Count);
        Assert.NotEmpty(valDs.Files);
    }

    [Fact]
    public void Background_loader_stream_does_not_depend_on_worker_count()
    {
        using var media = new MediaFolder();
        media.Image("a.png", "mandelbrot=size=200x160");
        media.Image("b.png", "testsrc2=size=200x160");
        media.Image("c.jpg", "mandelbrot=size=220x180:start_scale=1");
        var ds = new ImageClipDataset(media.Dir, new ImageClipOptions { Frames = 3, CropSize = 48, Split = SplitPart.All });
        var cfg = DegradationConfig.Light();
        cfg.VideoCompression.Prob = 0;
        var degrader = new Degrader(cfg);

        List<(long, string, byte[], byte[])> Run(int workers, long start)
        {
            using var loader = new ClipLoader(ds, new ClipLoaderOptions { Seed = 5, Workers = workers, Prefetch = 3, Scale = 4, StartPosition = start }, degrader);
            var res = new List<(long, string, byte[], byte[])>();
            for (int i = 0; i < 7; i++)
            {
                using var c = loader.Next();
                Assert.Equal(new long[] { 3, 3, 12, 12 }, c.Lr!.shape);
                res.Add((c.Position, c.Sample.Source, FrameBytes.ToRgb24(c.Hr), FrameBytes.ToRgb24(c.Lr!)));
            }
            return res;
        }
        var one = Run(1, 0);
        var two = Run(2, 0);
        Assert.Equal(Enumerable.Range(0, 7).Select(i => (long)i), one.Select(r => r.Item1));
        for (int i = 0; i < 7; i++)
        {
            Assert.Equal(one[i].Item2, two[i].Item2);
            Assert.Equal(one[i].Item3, two[i].Item3);
            Assert.Equal(one[i].Item4, two[i].Item4);
        }
        // every file appears once per epoch (shuffled order)
        Assert.Equal(3, one.Take(3).Select(r => r.Item2).Distinct().Count());
        // resume from position 4 continues the same stream
        var resumed = Run(2, 4);
        Assert.Equal(one[4].Item3, resumed[0].Item3);
        Assert.Equal(one[6].Item4, resumed[2].Item4);
    }

    [Fact]
    public void Video_clips_are_consecutive_or_strided_source_frames_and_bad_videos_are_skipped()
    {
        using var media = new MediaFolder();
        string video = media.Video("clip.mp4", "testsrc2=size=160x120:rate=25", 40);
        File.WriteAllBytes(media.Path("broken.mp4"), Enumerable.Repeat((byte)0x42, 4000).ToArray());

        var ds = new VideoClipDataset(media.Dir, new VideoClipOptions { Frames = 3, CropSize = 64, MaxStride = 3, Augment = false, Split = SplitPart.All });
        // reference: every frame of the video, decoded in one go
        byte[] all = FfmpegProcess.Run(FfmpegProcess.FfmpegPath, ["-v", "error", "-i", video, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], [], "reference decode");
        using var reference = FrameBytes.FromRgb24(all, 40, 120, 160);
        var strides = new HashSet<int>();
        for (int seed = 0; seed < 6; seed++)
        {
            using var clip = ds.Get(1, seed); // index 1 = clip.mp4 (sorted: broken.mp4, clip.mp4)
            Assert.EndsWith("clip.mp4", clip.Source);
            Assert.Equal(new long[] { 3, 3, 64, 64 }, clip.Hr.shape);
            var f = clip.FrameIndices;
            Assert.Equal(f[1] - f[0], f[2] - f[1]);
            strides.Add(f[1] - f[0]);
            var (x, y) = clip.CropOrigin;
            for (int t = 0; t < 3; t++)
            {
                using var expected = reference[f[t], .., y..(y + 64), x..(x + 64)];
                float d = expected.sub(clip.Hr[t]).abs().max().item<float>();
                if (d >= 1e-6f)
                {
                    var near = Enumerable.Range(0, 40).Select(k => (k, reference[k, .., y..(y + 64), x..(x + 64)].sub(clip.Hr[t]).abs().max().item<float>())).OrderBy(p => p.Item2).First();
                    Assert.Fail($"seed {seed}: frame {t} is not source frame {f[t]} (diff {d}); closest is frame {near.k} ({near.Item2})");
                }
            }
            Assert.True(clip.Hr[0].sub(clip.Hr[1]).abs().mean().item<float>() > 0.001f);
        }
        Assert.True(strides.Count >= 2, "strides t, t+k must vary");

        using var fromBroken = ds.Get(0, 1); // broken.mp4 → skipped, the next video is used
        Assert.EndsWith("clip.mp4", fromBroken.Source);
        Assert.Single(ds.Warnings);
        Assert.Contains("broken.mp4", ds.Warnings[0]);
    }
}
