using System.Runtime.InteropServices;
using Dloral.Media;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Pipeline;

/// <summary>
/// Frame ↔ tensor conversion for the streaming hot path, as plain loops over the tensor's memory.
/// Chaining half a dozen element-wise torch ops per frame (permute, cast, scale, round) costs
/// 10-200 ms per 720p frame when the intra-op threads compete with other processes; these loops
/// take a few ms on one core. Results equal <see cref="FrameTensors"/> (round half away from zero
/// instead of half to even; identical for every value that is not exactly k + 0.5 levels).
/// </summary>
public static class FrameConversion
{
    /// <summary>float32 [3,H,W] in [0,1] from an 8- or 16-bit interleaved RGB frame.</summary>
    public static Tensor ToTensor(VideoFrame frame, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(frame);
        int plane = frame.Width * frame.Height;
        var t = torch.empty(new long[] { 3, frame.Height, frame.Width }, ScalarType.Float32);
        var dst = MemoryMarshal.Cast<byte, float>(t.bytes);
        var r = dst[..plane];
        var g = dst.Slice(plane, plane);
        var b = dst.Slice(2 * plane, plane);
        if (frame.Depth == 8)
        {
            ReadOnlySpan<byte> src = frame.Data;
            const float s = 255f;
            for (int i = 0, j = 0; i < plane; i++, j += 3)
            {
                r[i] = src[j] / s;
                g[i] = src[j + 1] / s;
                b[i] = src[j + 2] / s;
            }
        }
        else
        {
            var src = MemoryMarshal.Cast<byte, ushort>(frame.Data.AsSpan());
            const float s = 65535f;
            for (int i = 0, j = 0; i < plane; i++, j += 3)
            {
                r[i] = src[j] / s;
                g[i] = src[j + 1] / s;
                b[i] = src[j + 2] / s;
            }
        }
        if (device is null || device.type == DeviceType.CPU) return t;
        var moved = t.to(device);
        t.Dispose();
        return moved;
    }

    /// <summary>An interleaved RGB frame from a [3,H,W] tensor in [0,1] (clamped, rounded), any device.</summary>
    public static VideoFrame ToFrame(Tensor image, int depth, long index, double? timestamp = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (depth is not (8 or 16)) throw new ArgumentOutOfRangeException(nameof(depth), $"depth {depth} (8 or 16)");
        if (image.dim() != 3 || image.shape[0] != 3)
            throw new ArgumentException($"expected an image tensor [3, H, W], got [{string.Join(", ", image.shape)}]", nameof(image));
        int h = (int)image.shape[1], w = (int)image.shape[2], plane = h * w;
        using var scope = NewDisposeScope();
        var cpu = image.device.type == DeviceType.CPU && image.dtype == ScalarType.Float32 && image.is_contiguous()
            ? image
            : image.detach().to(DeviceType.CPU).to_type(ScalarType.Float32).contiguous();
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

    // NaN compares false everywhere and ends up 0: a broken model output becomes black, not a crash.
    private static byte Quantize8(float v) => v > 0 ? v < 1 ? (byte)(v * 255f + 0.5f) : (byte)255 : (byte)0;

    private static ushort Quantize16(float v) => v > 0 ? v < 1 ? (ushort)(v * 65535f + 0.5f) : ushort.MaxValue : (ushort)0;
}
