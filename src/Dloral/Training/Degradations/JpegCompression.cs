using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Training.Degradations;

/// <summary>
/// A real JPEG encode/decode round trip (libjpeg-turbo inside SkiaSharp, 4:2:0 chroma) at an
/// integer quality. In-process because training crops are small: a 64² frame takes tens of
/// microseconds, where starting an ffmpeg process costs tens of milliseconds per call.
/// </summary>
public static class JpegCompression
{
    /// <summary>Compresses every frame of <paramref name="frames"/> [T,3,H,W] (values in [0,1]) at <paramref name="quality"/>.</summary>
    public static Tensor RoundTrip(Tensor frames, int quality)
    {
        if (frames.dim() != 4 || frames.shape[1] != 3)
            throw new ArgumentException($"JPEG round trip expects [T,3,H,W], got [{string.Join(",", frames.shape)}].", nameof(frames));
        quality = Math.Clamp(quality, 1, 100);
        using var scope = NewDisposeScope();
        int t = (int)frames.shape[0], h = (int)frames.shape[2], w = (int)frames.shape[3];
        byte[] rgb = FrameBytes.ToRgb24(frames);
        var outBytes = new byte[rgb.Length];
        int frameBytes = h * w * 3;
        var rgba = new byte[h * w * 4];
        var info = new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        for (int f = 0; f < t; f++)
        {
            int o = f * frameBytes;
            for (int i = 0, j = 0; i < frameBytes; i += 3, j += 4)
            {
                rgba[j] = rgb[o + i];
                rgba[j + 1] = rgb[o + i + 1];
                rgba[j + 2] = rgb[o + i + 2];
                rgba[j + 3] = 255;
            }
            using var image = SKImage.FromPixelCopy(info, rgba)
                              ?? throw new InvalidOperationException("SkiaSharp could not wrap a frame for JPEG encoding.");
            using var data = image.Encode(SKEncodedImageFormat.Jpeg, quality)
                             ?? throw new InvalidOperationException("SkiaSharp has no JPEG encoder (native assets missing?).");
            using var codec = SKCodec.Create(data)
                              ?? throw new InvalidOperationException("SkiaSharp could not decode its own JPEG.");
            using var bitmap = new SKBitmap(info);
            var result = codec.GetPixels(info, bitmap.GetPixels());
            if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput))
                throw new InvalidOperationException($"JPEG decode failed: {result}.");
            var px = bitmap.GetPixelSpan();
            for (int i = 0, j = 0; i < frameBytes; i += 3, j += 4)
            {
                outBytes[o + i] = px[j];
                outBytes[o + i + 1] = px[j + 1];
                outBytes[o + i + 2] = px[j + 2];
            }
        }
        return FrameBytes.FromRgb24(outBytes, t, h, w, frames.device).MoveToOuterDisposeScope();
    }
}

/// <summary>Conversions between float frames [T,3,H,W] in [0,1] and packed RGB24 bytes.</summary>
public static class FrameBytes
{
    /// <summary>Rounds to 8 bits and packs frame-major, row-major RGB24.</summary>
    public static byte[] ToRgb24(Tensor frames)
    {
        using var scope = NewDisposeScope();
        using var u8 = frames.detach().to(ScalarType.Float32).mul(255).round().clamp(0, 255).to(ScalarType.Byte)
            .permute(0, 2, 3, 1).contiguous().cpu();
        return u8.data<byte>().ToArray();
    }

    /// <summary>Unpacks RGB24 bytes of <paramref name="t"/> frames into a float [T,3,H,W] tensor in [0,1].</summary>
    public static Tensor FromRgb24(byte[] rgb, int t, int h, int w, Device? device = null)
    {
        if (rgb.Length != (long)t * h * w * 3)
            throw new ArgumentException($"Expected {(long)t * h * w * 3} bytes for {t}×{h}×{w} RGB frames, got {rgb.Length}.", nameof(rgb));
        using var scope = NewDisposeScope();
        var x = tensor(rgb, [t, h, w, 3], ScalarType.Byte).permute(0, 3, 1, 2).to(ScalarType.Float32).div(255);
        if (device is not null && device.type != DeviceType.CPU) x = x.to(device);
        return x.contiguous().MoveToOuterDisposeScope();
    }
}
