using Dloral.Training.Degradations;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Training.ClipDatasets;

/// <summary>Options of <see cref="ImageClipDataset"/>.</summary>
public sealed class ImageClipOptions
{
    /// <summary>Frames per clip (3 in DLoRAL: windows (0,1) and (1,2)).</summary>
    public int Frames { get; set; } = 3;
    /// <summary>Square HR crop size in pixels.</summary>
    public int CropSize { get; set; } = 256;
    /// <summary>Camera speed range in HR px per frame (direction uniform).</summary>
    public double[] ShiftRange { get; set; } = [0.5, 4.0];
    /// <summary>Largest acceleration per axis, px per frame² (smooth, not constant, motion).</summary>
    public double MaxAcceleration { get; set; } = 0.5;
    /// <summary>Largest rotation, degrees per frame.</summary>
    public double MaxRotationDeg { get; set; } = 0.5;
    /// <summary>Largest relative zoom per frame.</summary>
    public double MaxZoom { get; set; } = 0.01;
    /// <summary>The photo is resized by a factor drawn from this range before cropping (content scale jitter; large wallpapers otherwise give featureless crops).</summary>
    public double[] PhotoScaleRange { get; set; } = [0.5, 1.0];
    /// <summary>Random 8-way dihedral transform, the same for all frames.</summary>
    public bool Augment { get; set; } = true;
    public SplitPart Split { get; set; } = SplitPart.Train;
    /// <summary>Fraction of files (by file-name hash) held out for validation.</summary>
    public double ValidationFraction { get; set; } = 0.1;
    /// <summary>Decoded photos kept in memory (bytes of 8-bit RGB); 0 disables the cache. Decoding a 4K JPEG costs ~100 ms, a cached crop ~1 ms.</summary>
    public long CacheBytes { get; set; } = 768L << 20;
}

/// <summary>
/// A folder of photographs as short video clips: each clip is a random crop of one photo seen by a
/// smoothly moving camera (translation of a few px per frame with a little acceleration, small
/// rotation and zoom), rendered with an affine <c>grid_sample</c> on a larger region of the photo,
/// like the reference's shifted-LSDIR clips. Frame 0 is an exact crop. Corrupt or missing files
/// are skipped (the next file is used) with a warning.
/// </summary>
public sealed class ImageClipDataset : IClipDataset
{
    public static readonly string[] Extensions = [".jpg", ".jpeg", ".png", ".webp", ".bmp"];

    private readonly ImageClipOptions _options;
    private readonly DatasetFiles _files;
    private readonly PhotoCache? _cache;

    public IReadOnlyList<string> Files => _files.Files;
    /// <summary>The decoded-photo cache (null when disabled).</summary>
    public PhotoCache? Cache => _cache;
    public int Count => Files.Count;
    public IReadOnlyList<string> Warnings => _files.Warnings;
    public ImageClipOptions Options => _options;

    /// <summary>Raised for every skipped file (once per file).</summary>
    public event Action<string>? Warning
    {
        add => _files.Warning += value;
        remove => _files.Warning -= value;
    }

    public ImageClipDataset(string folder, ImageClipOptions? options = null)
    {
        _options = options ?? new ImageClipOptions();
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"Image clip dataset: folder '{folder}' does not exist.");
        if (_options.Frames < 1 || _options.CropSize < 8)
            throw new ArgumentException($"Image clip dataset: frames must be >= 1 and crop size >= 8 (got {_options.Frames}, {_options.CropSize}).");
        _files = new DatasetFiles("Image clip dataset", "image", folder, Extensions, _options.Split, _options.ValidationFraction);
        _cache = _options.CacheBytes > 0 ? new PhotoCache(_options.CacheBytes) : null;
    }

    /// <summary>The clip of file <paramref name="index"/> (or the next readable file) with all random choices from <paramref name="seed"/>.</summary>
    public ClipSample Get(int index, long seed) =>
        _files.FirstUsable(index, i => (TryMake(i, seed, out string? error), error));

    private ClipSample? TryMake(int index, long seed, out string? error)
    {
        var o = _options;
        var rng = new DegradationRandom(seed);
        // Every draw happens before decoding, in a fixed order, so one seed gives the same motion
        // whatever the photo and whether augmentation is on.
        double speed = rng.Uniform(o.ShiftRange);
        double dir = rng.Uniform(0, 2 * Math.PI);
        var motion = new CameraMotion(
            speed * Math.Cos(dir), speed * Math.Sin(dir),
            rng.Uniform(-o.MaxAcceleration, o.MaxAcceleration), rng.Uniform(-o.MaxAcceleration, o.MaxAcceleration),
            rng.Uniform(-o.MaxRotationDeg, o.MaxRotationDeg), rng.Uniform(-o.MaxZoom, o.MaxZoom));
        int dihedral = rng.Int(0, Dihedral.Count - 1);
        if (!o.Augment) dihedral = 0;
        double scale = rng.Uniform(o.PhotoScaleRange);
        double fx = rng.NextDouble(), fy = rng.NextDouble();

        int s = o.CropSize, t = o.Frames;
        int margin = MotionMargin(motion, s, t);
        int region = s + 2 * margin;

        string file = Files[index];
        // Peek at the size first to pick a decode scale; the decode itself may fail (corrupt file).
        var photo = DecodedPhoto.TryDecode(file, Math.Min(1.0, scale), out error, _cache);
        if (photo is null) return null;
        int ow = photo.OriginalWidth, oh = photo.OriginalHeight;
        if (Math.Min(ow, oh) < s / 2)
        {
            error = $"too small ({ow}x{oh}) for {s}² crops";
            return null;
        }
        // Scaled photo must hold the whole motion region; upscale small photos just enough.
        scale = Math.Max(scale, region / (double)Math.Min(ow, oh));
        double sw = ow * scale, sh = oh * scale;
        int x0 = (int)Math.Floor(fx * (sw - region + 1e-9)), y0 = (int)Math.Floor(fy * (sh - region + 1e-9));
        x0 = Math.Clamp(x0, 0, Math.Max(0, (int)sw - region));
        y0 = Math.Clamp(y0, 0, Math.Max(0, (int)sh - region));

        using var scope = NewDisposeScope();
        // The region in decoded-pixel coordinates, resized to region×region.
        double f = photo.Width / sw;
        int dx = Math.Clamp((int)Math.Round(x0 * f), 0, photo.Width - 1), dy = Math.Clamp((int)Math.Round(y0 * f), 0, photo.Height - 1);
        int dw = Math.Clamp((int)Math.Round(region * f), 1, photo.Width - dx), dh = Math.Clamp((int)Math.Round(region * (photo.Height / sh)), 1, photo.Height - dy);
        var crop = photo.Crop(dx, dy, dw, dh).unsqueeze(0);
        if (dw != region || dh != region)
            crop = nn.functional.interpolate(crop, [region, region], mode: dw > region ? InterpolationMode.Area : InterpolationMode.Bicubic, align_corners: dw > region ? null : false).clamp(0, 1);

        var frames = RenderMotion(crop, motion, s, t);
        if (dihedral != 0) frames = Dihedral.Apply(frames, dihedral);
        var hr = frames.contiguous().MoveToOuterDisposeScope();
        error = null;
        return new ClipSample
        {
            Hr = hr,
            Source = file,
            Index = index,
            DihedralIndex = dihedral,
            Motion = motion,
            FrameIndices = Enumerable.Range(0, t).ToArray(),
            CropOrigin = (x0 + margin, y0 + margin),
        };
    }

    /// <summary>Pixels of slack around the crop that the motion over <paramref name="frames"/> frames can reach.</summary>
    public static int MotionMargin(CameraMotion m, int crop, int frames)
    {
        double worst = 0;
        for (int t = 0; t < frames; t++)
        {
            var (dx, dy) = m.Shift(t);
            double corner = crop / Math.Sqrt(2) * (Math.Abs(m.RotationDegPerFrame * t) * Math.PI / 180 + Math.Abs(m.ZoomPerFrame * t));
            worst = Math.Max(worst, Math.Sqrt(dx * dx + dy * dy) + corner);
        }
        return (int)Math.Ceiling(worst) + 2;
    }

    /// <summary>
    /// Renders T views [T,3,S,S] of the centred region [1,3,R,R]: frame t samples the region at
    /// p_in = z(t)·Rot(θ(t))·p_out + d(t) (pixels, relative to the centre), bilinear.
    /// </summary>
    public static Tensor RenderMotion(Tensor region, CameraMotion m, int crop, int frames)
    {
        using var scope = NewDisposeScope();
        long r = region.shape[3];
        var theta = new float[frames * 6];
        for (int t = 0; t < frames; t++)
        {
            double ang = m.RotationDegPerFrame * t * Math.PI / 180, z = 1 + m.ZoomPerFrame * t;
            var (dx, dy) = m.Shift(t);
            double k = crop / (double)r;
            theta[t * 6 + 0] = (float)(k * z * Math.Cos(ang));
            theta[t * 6 + 1] = (float)(-k * z * Math.Sin(ang));
            theta[t * 6 + 2] = (float)(2 * dx / r);
            theta[t * 6 + 3] = (float)(k * z * Math.Sin(ang));
            theta[t * 6 + 4] = (float)(k * z * Math.Cos(ang));
            theta[t * 6 + 5] = (float)(2 * dy / r);
        }
        var th = tensor(theta, [frames, 2, 3]).to(region.device);
        var grid = nn.functional.affine_grid(th, [frames, 3, crop, crop], align_corners: false);
        var input = region.expand(frames, -1, -1, -1);
        var outp = nn.functional.grid_sample(input, grid, mode: GridSampleMode.Bilinear, padding_mode: GridSamplePaddingMode.Border, align_corners: false);
        return outp.MoveToOuterDisposeScope();
    }
}
