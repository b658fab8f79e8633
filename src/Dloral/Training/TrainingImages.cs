using SkiaSharp;
using static TorchSharp.torch;

namespace Dloral.Training;

/// <summary>PNG output of training samples.</summary>
public static class TrainingImages
{
    /// <summary>Writes an RGB image [3,H,W] in [0,1] as PNG (atomically: temp file, then rename).</summary>
    public static void SavePng(Tensor chw, string path)
    {
        ArgumentNullException.ThrowIfNull(chw);
        if (chw.dim() != 3 || chw.shape[0] != 3) throw new ArgumentException($"SavePng expects [3,H,W], got [{string.Join(",", chw.shape)}]");
        int h = (int)chw.shape[1], w = (int)chw.shape[2];
        byte[] rgba;
        using (var scope = NewDisposeScope())
        {
            var rgb = chw.detach().to(CPU).to_type(ScalarType.Float32).clamp(0, 1).mul(255).round().to_type(ScalarType.Byte);
            var a = cat([rgb, full(1, h, w, 255, dtype: ScalarType.Byte)], 0).permute(1, 2, 0).contiguous();
            rgba = a.bytes.ToArray();
        }
        using var bitmap = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque));
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var tmp = path + ".tmp";
        using (var file = File.Create(tmp)) data.SaveTo(file);
        File.Move(tmp, path, overwrite: true);
    }
}
