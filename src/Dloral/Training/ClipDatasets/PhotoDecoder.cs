using SkiaSharp;
using static TorchSharp.torch;

namespace Dloral.Training.ClipDatasets;

/// <summary>
/// A decoded photo (JPEG / PNG / WebP / BMP / GIF via SkiaSharp, no apt libraries) held as packed
/// 8-bit RGB in managed memory (so it can be cached and shared between loader threads without any
/// native lifetime), from which float crops are cut. JPEGs can be decoded at n/8 of their size
/// directly (DCT scaling), which makes large wallpapers cheap when the dataset downscales anyway.
/// </summary>
public sealed class DecodedPhoto
{
    private readonly byte[] _rgb;

    /// <summary>Width and height of the file itself.</summary>
    public int OriginalWidth { get; }
    public int OriginalHeight { get; }
    /// <summary>Size of the decoded pixels (smaller than the original when a scaled decode was used).</summary>
    public int Width { get; }
    public int Height { get; }
    public long Bytes => _rgb.LongLength;

    private DecodedPhoto(byte[] rgb, int w, int h, int ow, int oh)
    {
        _rgb = rgb;
        Width = w;
        Height = h;
        OriginalWidth = ow;
        OriginalHeight = oh;
    }

    /// <summary>
    /// Decodes <paramref name="path"/>, at a reduced size when the codec supports one that is still
    /// at least <paramref name="minScale"/> of the original. Returns null and an error message for
    /// missing, unreadable, truncated or unsupported files. With a <paramref name="cache"/>, a photo
    /// decoded before at the same size is reused (the result is the same either way).
    /// </summary>
    public static DecodedPhoto? TryDecode(string path, double minScale, out string? error, PhotoCache? cache = null)
    {
        error = null;
        try
        {
            using var stream = File.OpenRead(path);
            using var codec = SKCodec.Create(stream, out var createResult);
            if (codec is null)
            {
                error = $"not a decodable image ({createResult})";
                return null;
            }
            int ow = codec.Info.Width, oh = codec.Info.Height;
            var dims = new SKSizeI(ow, oh);
            // The smallest size the codec decodes natively (JPEG: n/8) that is still >= minScale.
            for (int n = Math.Max(1, (int)Math.Ceiling(minScale * 8)); n < 8 && minScale < 1; n++)
            {
                var scaled = codec.GetScaledDimensions(n / 8f);
                if (scaled.Width >= minScale * ow - 1 && scaled.Height >= minScale * oh - 1 && scaled.Width > 0 && scaled.Height > 0)
                {
                    dims = scaled;
                    break;
                }
            }
            if (cache?.TryGet(path, dims.Width, dims.Height) is { } hit) return hit;

            var info = new SKImageInfo(dims.Width, dims.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
            using var bitmap = new SKBitmap(info);
            var result = codec.GetPixels(info, bitmap.GetPixels());
            if (result == SKCodecResult.InvalidScale && (dims.Width != ow || dims.Height != oh))
            {
                // the codec cannot scale after all: decode at full size (cached under the full size)
                return TryDecode(path, 1.0, out error, cache);
            }
            if (result != SKCodecResult.Success)
            {
                error = result == SKCodecResult.IncompleteInput ? "truncated image data" : $"decode failed ({result})";
                return null;
            }
            var px = bitmap.GetPixelSpan();
            int w = dims.Width, h = dims.Height, stride = bitmap.RowBytes;
            var rgb = new byte[(long)w * h * 3];
            for (int r = 0; r < h; r++)
            {
                var row = px.Slice(r * stride, w * 4);
                long o = (long)r * w * 3;
                for (int i = 0, j = 0; i < w; i++, j += 4)
                {
                    rgb[o + 3 * i] = row[j];
                    rgb[o + 3 * i + 1] = row[j + 1];
                    rgb[o + 3 * i + 2] = row[j + 2];
                }
            }
            var photo = new DecodedPhoto(rgb, w, h, ow, oh);
            cache?.Add(path, photo);
            return photo;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = e.Message;
            return null;
        }
    }

    /// <summary>The float RGB crop [3,h,w] in [0,1] of the decoded pixels at (x, y).</summary>
    public Tensor Crop(int x, int y, int w, int h)
    {
        if (x < 0 || y < 0 || w <= 0 || h <= 0 || x + w > Width || y + h > Height)
            throw new ArgumentOutOfRangeException(nameof(x), $"Crop {w}x{h}+{x}+{y} outside the {Width}x{Height} photo.");
        var crop = new byte[w * h * 3];
        for (int r = 0; r < h; r++)
            Array.Copy(_rgb, ((long)(y + r) * Width + x) * 3, crop, (long)r * w * 3, w * 3);
        using var scope = NewDisposeScope();
        return tensor(crop, [h, w, 3], TorchSharp.torch.ScalarType.Byte).permute(2, 0, 1).to(TorchSharp.torch.ScalarType.Float32).div(255)
            .contiguous().MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A thread-safe least-recently-used cache of decoded photos, bounded in bytes, keyed by file and
/// decoded size (so a hit returns exactly what a fresh decode would).
/// </summary>
public sealed class PhotoCache
{
    private readonly long _capacity;
    private readonly LinkedList<(string Key, DecodedPhoto Photo)> _lru = new();
    private readonly Dictionary<string, LinkedListNode<(string Key, DecodedPhoto Photo)>> _map = new();
    private long _bytes;

    public PhotoCache(long capacityBytes) => _capacity = capacityBytes;

    public long Bytes { get { lock (_lru) return _bytes; } }
    public long Hits { get; private set; }
    public long Misses { get; private set; }

    private static string KeyOf(string path, int w, int h) => $"{w}x{h}|{path}";

    public DecodedPhoto? TryGet(string path, int w, int h)
    {
        lock (_lru)
        {
            if (_map.TryGetValue(KeyOf(path, w, h), out var node))
            {
                _lru.Remove(node);
                _lru.AddFirst(node);
                Hits++;
                return node.Value.Photo;
            }
            Misses++;
            return null;
        }
    }

    public void Add(string path, DecodedPhoto photo)
    {
        if (photo.Bytes > _capacity) return;
        string key = KeyOf(path, photo.Width, photo.Height);
        lock (_lru)
        {
            if (_map.ContainsKey(key)) return;
            _map[key] = _lru.AddFirst((key, photo));
            _bytes += photo.Bytes;
            while (_bytes > _capacity && _lru.Last is { } last)
            {
                _lru.RemoveLast();
                _map.Remove(last.Value.Key);
                _bytes -= last.Value.Photo.Bytes;
            }
        }
    }
}
