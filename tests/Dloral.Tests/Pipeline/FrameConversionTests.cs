using Dloral.Media;
using Dloral.Pipeline;
using Dloral.Tests.Support;
using TorchSharp;

namespace Dloral.Tests.Pipeline;

public class FrameConversionTests
{
    [Theory]
    [InlineData(8)]
    [InlineData(16)]
    public void Matches_media_FrameTensors_both_ways(int depth)
    {
        var rng = new Random(depth);
        var data = new byte[VideoFrame.ByteCount(13, 7, depth)];
        rng.NextBytes(data);
        var frame = new VideoFrame(13, 7, depth, data, 3);
        using var ours = FrameConversion.ToTensor(frame);
        using var theirs = FrameTensors.ToTensor(frame);
        TensorAssert.Equal(theirs, ours, "to tensor");

        using var noisy = torch.rand(3, 7, 13, generator: new torch.Generator((ulong)depth)).mul_(1.2f).sub_(0.1f); // out of range too
        var a = FrameConversion.ToFrame(noisy, depth, 5);
        var b = FrameTensors.ToFrame(noisy, depth, 5);
        Assert.Equal(b.Data, a.Data);
        Assert.Equal((13, 7, depth, 5L), (a.Width, a.Height, a.Depth, a.Index));
        // Round trip is lossless.
        Assert.Equal(data, FrameConversion.ToFrame(ours, depth, 3).Data);
    }
}
