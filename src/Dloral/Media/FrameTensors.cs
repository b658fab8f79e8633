using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Media;

/// <summary>
/// Converts between <see cref="VideoFrame"/> (interleaved RGB bytes) and float32 [3, H, W] tensors in [0, 1].
/// Plain loops over the tensor's memory: a chain of element-wise torch ops (permute, cast, scale, round) costs
/// far more per frame when libtorch's threads compete with other processes, these take a few ms per 720p frame.
/// </summary>
public static class FrameTensors
{
    /// <summary>A float32 [3, H, W] tensor in [0, 1] (8-bit divides by 255, 16-bit by 65535), on <paramref name="device"/> (CPU by default).</summary>
    public static Tensor ToTensor(VideoFrame frame, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(frame);
        int plane = frame.Width * frame.Height;
        var t = empty([3, frame.Height, frame.Width], ScalarType.Float32);
        var dst = MemoryMarshal.Cast<byte, float>(t.bytes);
        var r = dst[..plane];
        var g = dst.Slice(plane, plane);
        var b = dst.Slice(2 * plane, plane);
        if (frame.Depth == 8)
        {
            ReadOnlySpan<byte> src = frame.Data;
            const float scale = 1f / 255f;
            for (int i = 0, j = 0; i < plane; i++, j += 3)
            {
                r[i] = src[j] * scale;
                g[i] = src[j + 1] * scale;
                b[i] = src[j + 2] * scale;
            }
        }
        else
        {
            var src = MemoryMarshal.Cast<byte, ushort>(frame.Data.AsSpan());
            const float scale = 1f / 65535f;
            for (int i = 0, j = 0; i < plane; i++, j += 3)
            {
                r[i] = src[j] * scale;
                g[i] = src[j + 1] * scale;
                b[i] = src[j + 2] * scale;
            }
        }
        if (device is null || device.type == DeviceType.CPU) return t;
        var moved = t.to(device);
        t.Dispose();
        return moved;
    }

    /// <summary>
    /// A frame from a [3, H, W] (or [1, 3, H, W]) tensor in [0, 1]: clamped, scaled to 0..255 or 0..65535 and
    /// rounded to nearest (halves away from zero). NaN becomes 0. The tensor may live on any device and dtype.
    /// </summary>
    public static VideoFrame ToFrame(Tensor image, int depth, long index, double? timestamp = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (depth is not (8 or 16)) throw new ArgumentOutOfRangeException(nameof(depth), $"depth {depth} (8 or 16)");
        if (!(image.dim() == 3 && image.shape[0] == 3) && !(image.dim() == 4 && image.shape[0] == 1 && image.shape[1] == 3))
            throw new ArgumentException($"expected an image tensor [3, H, W], got [{string.Join(", ", image.shape)}]", nameof(image));
        using var scope = NewDisposeScope();
        var chw = image.dim() == 4 ? image.squeeze(0) : image;
        int h = (int)chw.shape[1], w = (int)chw.shape[2], plane = h * w;
        var cpu = chw.device.type == DeviceType.CPU && chw.dtype == ScalarType.Float32 && chw.is_contiguous()
            ? chw
            : chw.detach().to(DeviceType.CPU).to_type(ScalarType.Float32).contiguous();
        ReadOnlySpan<float> src = MemoryMarshal.Cast<byte, float>(cpu.bytes);
        var r = src[..plane];
        var g = src.Slice(plane, plane);
        var b = src.Slice(2 * plane, plane);
        var data = new byte[VideoFrame.ByteCount(w, h, depth)];
        if (depth == 8)
        {
            for (int i = 0, j = 0; i < plane; i++, j += 3)
            {
                data[j] = Quantize8(r[i]);
                data[j + 1] = Quantize8(g[i]);
                data[j + 2] = Quantize8(b[i]);
            }
        }
        else
        {
            var dst = MemoryMarshal.Cast<byte, ushort>(data.AsSpan());
            for (int i = 0, j = 0; i < plane; i++, j += 3)
            {
                dst[j] = Quantize16(r[i]);
                dst[j + 1] = Quantize16(g[i]);
                dst[j + 2] = Quantize16(b[i]);
            }
        }
        return new VideoFrame(w, h, depth, data, index, timestamp);
    }

    // Written so NaN fails every comparison and lands on 0: a broken model output becomes black, not a crash.
    private static byte Quantize8(float v) => v > 0 ? v < 1 ? (byte)(v * 255f + 0.5f) : (byte)255 : (byte)0;

    private static ushort Quantize16(float v) => v > 0 ? v < 1 ? (ushort)(v * 65535f + 0.5f) : ushort.MaxValue : (ushort)0;
}
