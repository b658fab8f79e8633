using SkiaSharp;
using static TorchSharp.torch;

namespace Dloral.Training.ClipDatasets;

/// <summary>
/// A decoded photo (JPEG / PNG / WebP / BMP / GIF via SkiaSharp, no apt libraries) held as 8-bit
/// RGBA, from which float crops are cut. JPEGs can be decoded at 1/2, 1/4, 1/8 directly (DCT
/// scaling), which makes large wallpapers cheap when the dataset wants them downscaled anyway.
/// </summary>
public sealed class DecodedPhoto : IDisposable
{
    private readonly SKBitmap _bitmap;

    /// <summary>Width and height of the file itself.</summary>
    public int OriginalWidth { get; }
    public int OriginalHeight { get; }
    /// <summary>Size of the decoded pixels (smaller than the original when a scaled decode was used).</summary>
    public int Width => _bitmap.Width;
    public int Height => _bitmap.Height;

    private DecodedPhoto(SKBitmap bitmap, int ow, int oh)
    {
        _bitmap = bitmap;
        OriginalWidth = ow;
        OriginalHeight = oh;
    }

    /// <summary>
    /// Decodes <paramref name="path"/>, at a reduced size when the codec supports one that is still
    /// at least <paramref name="minScale"/> of the original. Returns null and an error message for
    /// missing, unreadable, truncated or unsupported files.
    /// </summary>
    public static DecodedPhoto? TryDecode(string path, double minScale, out string? error)
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
            if (minScale < 1)
            {
                var scaled = codec.GetScaledDimensions((float)minScale);
                if (scaled.Width >= minScale * ow - 1 && scaled.Height >= minScale * oh - 1 && scaled.Width > 0 && scaled.Height > 0)
                    dims = scaled;
            }
            var info = new SKImageInfo(dims.Width, dims.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
            var bitmap = new SKBitmap(info);
            var result = codec.GetPixels(info, bitmap.GetPixels());
            if (result == SKCodecResult.InvalidScale && (dims.Width != ow || dims.Height != oh))
            {
                bitmap.Dispose();
                info = new SKImageInfo(ow, oh, SKColorType.Rgba8888, SKAlphaType.Unpremul);
                bitmap = new SKBitmap(info);
                result = codec.GetPixels(info, bitmap.GetPixels());
            }
            if (result != SKCodecResult.Success)
            {
                bitmap.Dispose();
                error = result == SKCodecResult.IncompleteInput ? "truncated image data" : $"decode failed ({result})";
                return null;
            }
            return new DecodedPhoto(bitmap, ow, oh);
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
        var px = _bitmap.GetPixelSpan();
        int stride = _bitmap.RowBytes;
        var rgb = new byte[w * h * 3];
        for (int r = 0; r < h; r++)
        {
            var row = px.Slice((y + r) * stride + x * 4, w * 4);
            int o = r * w * 3;
            for (int i = 0, j = 0; i < w; i++, j += 4)
            {
                rgb[o + 3 * i] = row[j];
                rgb[o + 3 * i + 1] = row[j + 1];
                rgb[o + 3 * i + 2] = row[j + 2];
            }
        }
        using var scope = NewDisposeScope();
        return tensor(rgb, [h, w, 3], TorchSharp.torch.ScalarType.Byte).permute(2, 0, 1).to(TorchSharp.torch.ScalarType.Float32).div(255)
            .contiguous().MoveToOuterDisposeScope();
    }

    public void Dispose() => _bitmap.Dispose();
}
