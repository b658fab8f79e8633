using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Metrics;

/// <summary>Shape helpers shared by the metrics: frames are float RGB in [0,1], [3,H,W] or [N,3,H,W].</summary>
internal static class ImageLayout
{
    /// <summary>Returns a 4-D float64 view [N,C,H,W] of an image or batch (metrics accumulate in float64).</summary>
    public static Tensor AsBatch64(Tensor image, string what)
    {
        var t = image.dim() switch
        {
            3 => image.unsqueeze(0),
            4 => image,
            _ => throw new ArgumentException($"{what}: expected [C,H,W] or [N,C,H,W], got [{string.Join(",", image.shape)}]"),
        };
        return t.to_type(ScalarType.Float64);
    }

    /// <summary>Throws a clear error when two images do not have the same shape.</summary>
    public static void CheckSameShape(Tensor a, Tensor b, string what)
    {
        if (!a.shape.SequenceEqual(b.shape))
            throw new ArgumentException($"{what}: image shapes differ: [{string.Join(",", a.shape)}] vs [{string.Join(",", b.shape)}]");
    }

    /// <summary>Removes <paramref name="border"/> pixels on each side (BasicSR's crop_border = scale).</summary>
    public static Tensor CropBorder(Tensor batch, int border)
    {
        if (border <= 0) return batch;
        long h = batch.shape[^2], w = batch.shape[^1];
        if (h <= 2 * border || w <= 2 * border)
            throw new ArgumentException($"border crop {border} leaves nothing of a {w}x{h} image");
        return batch[.., .., TensorIndex.Slice(border, h - border), TensorIndex.Slice(border, w - border)];
    }
}
