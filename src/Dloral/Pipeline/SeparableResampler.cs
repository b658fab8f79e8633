using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Pipeline;

/// <summary>
/// Resizes images with a separable kernel, one axis at a time. The weights follow Pillow's
/// resampling (pixel centres at i+0.5, the kernel widened by the reduction factor when shrinking so
/// it also antialiases, taps outside the image dropped and the rest renormalised), but are applied
/// in float32 without Pillow's 8-bit intermediate rounding.
/// </summary>
public static class SeparableResampler
{
    /// <summary>The dense [outSize, inSize] weight matrix for one axis (rows sum to 1).</summary>
    public static double[,] Weights(int inSize, int outSize, ResampleKernel kernel)
    {
        var (first, taps) = Taps(inSize, outSize, kernel);
        var w = new double[outSize, inSize];
        for (int i = 0; i < outSize; i++)
            for (int k = 0; k < taps[i].Length; k++) w[i, first[i] + k] = taps[i][k];
        return w;
    }

    /// <summary>For every output pixel: the first input pixel it reads and the normalised tap weights.</summary>
    public static (int[] First, double[][] Taps) Taps(int inSize, int outSize, ResampleKernel kernel)
    {
        if (inSize <= 0 || outSize <= 0) throw new ArgumentOutOfRangeException(nameof(outSize), $"sizes must be positive (in {inSize}, out {outSize})");
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = kernel.Support * filterScale;
        var first = new int[outSize];
        var taps = new double[outSize][];
        for (int i = 0; i < outSize; i++)
        {
            double center = (i + 0.5) * scale;
            // (int) truncates toward zero like Pillow's C cast; the clamp to 0 follows.
            int xmin = Math.Max((int)(center - support + 0.5), 0);
            int xmax = Math.Min((int)(center + support + 0.5), inSize);
            var k = new double[Math.Max(0, xmax - xmin)];
            double sum = 0;
            for (int x = xmin; x < xmax; x++)
            {
                k[x - xmin] = kernel[(x - center + 0.5) / filterScale];
                sum += k[x - xmin];
            }
            if (sum != 0)
                for (int j = 0; j < k.Length; j++) k[j] /= sum;
            first[i] = xmin;
            taps[i] = k;
        }
        return (first, taps);
    }

    /// <summary>
    /// One axis in banded form for gathering: indices and weights, both [K, outSize], where K is the
    /// largest tap count (shorter rows are padded with weight 0 at a valid index).
    /// </summary>
    public static (Tensor Index, Tensor Weight) Banded(int inSize, int outSize, ResampleKernel kernel, Device? device = null)
    {
        var (first, taps) = Taps(inSize, outSize, kernel);
        int kmax = taps.Max(t => t.Length);
        var idx = new long[kmax * outSize];
        var wts = new float[kmax * outSize];
        for (int i = 0; i < outSize; i++)
            for (int k = 0; k < kmax; k++)
            {
                bool real = k < taps[i].Length;
                idx[k * outSize + i] = real ? first[i] + k : Math.Min(first[i], inSize - 1);
                wts[k * outSize + i] = real ? (float)taps[i][k] : 0f;
            }
        var index = torch.tensor(idx, new long[] { kmax, outSize });
        var weight = torch.tensor(wts, new long[] { kmax, outSize });
        if (device is not null && device.type != DeviceType.CPU)
        {
            var (i2, w2) = (index.to(device), weight.to(device));
            index.Dispose();
            weight.Dispose();
            return (i2, w2);
        }
        return (index, weight);
    }

    /// <summary>Resizes a [..., H, W] float tensor with banded weights for both axes.</summary>
    public static Tensor Apply(Tensor image, (Tensor Index, Tensor Weight) rows, (Tensor Index, Tensor Weight) cols)
    {
        using var scope = torch.NewDisposeScope();
        var horizontal = Gather(image, cols, dim: -1);
        var result = Gather(horizontal, rows, dim: -2);
        return result.MoveToOuterDisposeScope();
    }

    private static Tensor Gather(Tensor image, (Tensor Index, Tensor Weight) band, int dim)
    {
        long taps = band.Index.shape[0];
        Tensor? acc = null;
        for (long k = 0; k < taps; k++)
        {
            var w = band.Weight[k];
            if (dim == -2) w = w.unsqueeze(-1);
            var term = image.index_select(dim, band.Index[k]).mul_(w);
            acc = acc is null ? term : acc.add_(term);
        }
        return acc!;
    }
}
