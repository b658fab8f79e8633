using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Media;

/// <summary>Converts between <see cref="VideoFrame"/> (interleaved RGB bytes) and float32 [3, H, W] tensors in [0, 1].</summary>
public static class FrameTensors
{
    /// <summary>A float32 [3, H, W] tensor in [0, 1] (8-bit divides by 255, 16-bit by 65535), on <paramref name="device"/> (CPU by default).</summary>
    public static Tensor ToTensor(VideoFrame frame, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(frame);
        using var scope = NewDisposeScope();
        Tensor hwc;
        float max;
        if (frame.Depth == 8)
        {
            hwc = empty([frame.Height, frame.Width, 3], ScalarType.Byte);
            frame.Data.AsSpan().CopyTo(hwc.bytes);
            max = 255f;
        }
        else
        {
            // TorchSharp has no uint16: load as int16 and undo the sign in int32.
            var raw = empty([frame.Height, frame.Width, 3], ScalarType.Int16);
            frame.Data.AsSpan().CopyTo(raw.bytes);
            hwc = raw.to_type(ScalarType.Int32).bitwise_and_(0xFFFF);
            max = 65535f;
        }
        var chw = hwc.permute(2, 0, 1).to_type(ScalarType.Float32).div_(max);
        if (device is not null && device.type != DeviceType.CPU) chw = chw.to(device);
        return chw.contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// A frame from a [3, H, W] (or [1, 3, H, W]) tensor in [0, 1]: clamped, scaled to 0..255 or 0..65535 and
    /// rounded to nearest. The tensor may live on any device.
    /// </summary>
    public static VideoFrame ToFrame(Tensor image, int depth, long index, double? timestamp = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (depth is not (8 or 16)) throw new ArgumentOutOfRangeException(nameof(depth), $"depth {depth} (8 or 16)");
        using var scope = NewDisposeScope();
        var t = image.dim() == 4 && image.shape[0] == 1 ? image.squeeze(0) : image;
        if (t.dim() != 3 || t.shape[0] != 3)
            throw new ArgumentException($"expected an image tensor [3, H, W], got [{string.Join(", ", image.shape)}]", nameof(image));
        int h = (int)t.shape[1], w = (int)t.shape[2];
        float max = depth == 8 ? 255f : 65535f;
        var q = t.detach().to(DeviceType.CPU).to_type(ScalarType.Float32).clamp(0f, 1f).mul(max).round_();
        var hwc = q.permute(1, 2, 0).contiguous();
        var data = new byte[VideoFrame.ByteCount(w, h, depth)];
        if (depth == 8)
        {
            hwc.to_type(ScalarType.Byte).bytes.CopyTo(data);
        }
        else
        {
            // 0..65535 does not fit int16: shift into its range, the bit pattern is the uint16 we want.
            var i32 = hwc.to_type(ScalarType.Int32);
            var wrapped = i32.where(i32.lt(32768), i32.sub(65536)).to_type(ScalarType.Int16);
            wrapped.bytes.CopyTo(data);
        }
        return new VideoFrame(w, h, depth, data, index, timestamp);
    }
}
