using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Metrics;

/// <summary>Side-by-side PNG of a <see cref="CropSet"/>: one tile per sequence (nearest-neighbour zoom), labels on top.</summary>
public static class CropMontage
{
    /// <summary>Writes the PNG; tiles are zoomed so that each is at least 256 pixels wide.</summary>
    public static void Write(CropSet crops, string path)
    {
        const int labelHeight = 22, gap = 4;
        int zoom = Math.Max(1, 256 / crops.Size);
        int tile = crops.Size * zoom;
        int width = crops.Tiles.Count * tile + (crops.Tiles.Count - 1) * gap;
        int height = tile + labelHeight;
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.White);
            using var typeface = LabelTypeface();
            using var font = new SKFont(typeface, 14);
            using var paint = new SKPaint { Color = SKColors.Black, IsAntialias = true };
            for (int i = 0; i < crops.Tiles.Count; i++)
            {
                var (label, crop) = crops.Tiles[i];
                using var tileBitmap = ToBitmap(crop);
                using var tileImage = SKImage.FromBitmap(tileBitmap);
                int x = i * (tile + gap);
                // Nearest-neighbour zoom: show the pixels as they are.
                canvas.DrawImage(tileImage, new SKRect(x, labelHeight, x + tile, labelHeight + tile), new SKSamplingOptions(SKFilterMode.Nearest));
                canvas.DrawText(label, x + 4, 16, SKTextAlign.Left, font, paint);
            }
        }
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var file = File.Create(path);
        data.SaveTo(file);
    }

    /// <summary>
    /// The self-contained Skia build has no fontconfig, so its default typeface draws nothing: load a common
    /// TrueType font from disk (DejaVu ships with Debian images). Without one, tiles stay unlabelled and the
    /// Markdown report lists the column order.
    /// </summary>
    private static SKTypeface LabelTypeface()
    {
        string[] candidates =
        [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/Library/Fonts/Arial.ttf",
            "C:/Windows/Fonts/arial.ttf",
        ];
        foreach (var path in candidates)
            if (File.Exists(path) && SKTypeface.FromFile(path) is { } face) return face;
        return SKTypeface.CreateDefault();
    }

    private static SKBitmap ToBitmap(Tensor chw)
    {
        using var scope = NewDisposeScope();
        int h = (int)chw.shape[1], w = (int)chw.shape[2];
        var rgb = chw.to(CPU).to_type(ScalarType.Float32).clamp(0, 1).mul(255).round().to_type(ScalarType.Byte);
        var rgba = cat([rgb, full(1, h, w, 255, dtype: ScalarType.Byte)], 0).permute(1, 2, 0).contiguous();
        var bitmap = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var bytes = rgba.bytes;
        System.Runtime.InteropServices.Marshal.Copy(bytes.ToArray(), 0, bitmap.GetPixels(), bytes.Length);
        return bitmap;
    }
}
