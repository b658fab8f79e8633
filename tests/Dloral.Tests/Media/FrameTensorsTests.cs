using Dloral.Media;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Tests.Media;

public class FrameTensorsTests
{
    private static VideoFrame Pattern(int width, int height, int depth)
    {
        var data = new byte[VideoFrame.ByteCount(width, height, depth)];
        var rng = new Random(1234);
        rng.NextBytes(data);
        if (depth == 16)
        {
            // Include the extremes and values above 32767 (they would turn negative in an int16 mistake).
            BitConverter.TryWriteBytes(data.AsSpan(0, 2), (ushort)65535);
            BitConverter.TryWriteBytes(data.AsSpan(2, 2), (ushort)0);
            BitConverter.TryWriteBytes(data.AsSpan(4, 2), (ushort)40000);
        }
        return new VideoFrame(width, height, depth, data, 7, 0.25);
    }

    [Theory]
    [InlineData(8)]
    [InlineData(16)]
    public void Frame_tensor_frame_is_exact(int depth)
    {
        var frame = Pattern(13, 5, depth);

        using var t = FrameTensors.ToTensor(frame);
        var back = FrameTensors.ToFrame(t, depth, frame.Index, frame.Timestamp);

        Assert.Equal(new long[] { 3, 5, 13 }, t.shape);
        Assert.Equal(ScalarType.Float32, t.dtype);
        Assert.Equal(frame.Data, back.Data);
        Assert.Equal((7L, 0.25), (back.Index, back.Timestamp!.Value));
    }

    [Fact]
    public void Tensor_is_planar_rgb_scaled_to_unit_range()
    {
        var frame = Pattern(4, 3, 16);

        using var t = FrameTensors.ToTensor(frame);

        // Pixel (x=2, y=1), green channel.
        Assert.Equal(frame.Sample(2, 1, 1), t[1, 1, 2].item<float>(), 6);
        Assert.Equal(1f, t[0, 0, 0].item<float>());
        Assert.Equal(0f, t[1, 0, 0].item<float>());
        Assert.Equal(40000 / 65535f, t[2, 0, 0].item<float>(), 6);
    }

    [Fact]
    public void To_frame_clamps_and_rounds_to_nearest()
    {
        using var t = tensor(new float[] { -0.5f, 0.5f / 255f + 1e-4f, 0.5f / 255f - 1e-4f, 2f, 1f, 0.5f }).reshape(3, 1, 2);

        var f8 = FrameTensors.ToFrame(t, 8, 0);
        var f16 = FrameTensors.ToFrame(t.unsqueeze(0), 16, 0);

        // Layout [3, 1, 2] → pixels (R,G,B): (-0.5, 0.5/255-, 1) and (0.5/255+, 2, 0.5).
        Assert.Equal(new byte[] { 0, 0, 255, 1, 255, 128 }, f8.Data);
        Assert.Equal(65535, BitConverter.ToUInt16(f16.Data, 4));
        Assert.Equal(32768, BitConverter.ToUInt16(f16.Data, 10));
        Assert.Throws<ArgumentException>(() => FrameTensors.ToFrame(zeros(2, 4, 4), 8, 0));
        using var nan = full(3, 2, 2, float.NaN);
        Assert.All(FrameTensors.ToFrame(nan, 8, 0).Data, v => Assert.Equal(0, v));
    }
}
