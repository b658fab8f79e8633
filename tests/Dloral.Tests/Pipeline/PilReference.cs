using Dloral.Pipeline;

namespace Dloral.Tests.Pipeline;

/// <summary>
/// Bit-exact re-implementation of Pillow 9.x's 8-bit <c>Image.resize</c> (Resample.c): the same tap
/// weights as <see cref="SeparableResampler.Taps"/>, converted to 22-bit fixed point, horizontal pass
/// first with the intermediate image rounded to 8 bits, then the vertical pass. Used to prove the
/// tap weights are Pillow's and to measure how far the float baselines are from Pillow.
/// </summary>
internal static class PilReference
{
    private const int PrecisionBits = 32 - 8 - 2;

    /// <summary>Resizes an HWC (or HW with channels = 1) byte image.</summary>
    public static byte[] Resize(byte[] src, int h, int w, int channels, int outH, int outW, ResampleKernel kernel)
    {
        var cur = src;
        int curW = w;
        if (outW != w)
        {
            cur = Pass(cur, h, w, channels, outW, kernel, horizontal: true);
            curW = outW;
        }
        if (outH != h) cur = Pass(cur, h, curW, channels, outH, kernel, horizontal: false);
        return cur;
    }

    private static byte[] Pass(byte[] src, int h, int w, int c, int outSize, ResampleKernel kernel, bool horizontal)
    {
        int inSize = horizontal ? w : h;
        var (first, taps) = SeparableResampler.Taps(inSize, outSize, kernel);
        var fixedTaps = taps.Select(t => t.Select(v => v < 0 ? (int)(-0.5 + v * (1 << PrecisionBits)) : (int)(0.5 + v * (1 << PrecisionBits))).ToArray()).ToArray();
        int oh = horizontal ? h : outSize, ow = horizontal ? outSize : w;
        var dst = new byte[oh * ow * c];
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                for (int ch = 0; ch < c; ch++)
                {
                    int i = horizontal ? x : y;
                    int ss = 1 << (PrecisionBits - 1);
                    for (int k = 0; k < fixedTaps[i].Length; k++)
                    {
                        int sx = horizontal ? first[i] + k : x, sy = horizontal ? y : first[i] + k;
                        ss += src[(sy * w + sx) * c + ch] * fixedTaps[i][k];
                    }
                    dst[(y * ow + x) * c + ch] = (byte)Math.Clamp(ss >> PrecisionBits, 0, 255);
                }
        return dst;
    }
}
