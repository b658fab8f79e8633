using Dloral.Temporal;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Tests.Temporal;

public class SceneCutDetectorTests
{
    public SceneCutDetectorTests() => TorchRuntime.Initialize();

    // Shot A: a warm diagonal gradient with a bright square moving right by 3 px per frame.
    private static Tensor ShotA(int i)
    {
        var y = arange(0, 96, dtype: ScalarType.Float32).view(96, 1).expand(96, 128);
        var x = arange(0, 128, dtype: ScalarType.Float32).view(1, 128).expand(96, 128);
        var baseImg = ((x + y) / 224.0f).mul(0.6).add(0.1);
        var frame = stack([baseImg * 1.0, baseImg * 0.7, baseImg * 0.4]).clone();
        frame[.., 30..60, (10 + 3 * i)..(40 + 3 * i)] = tensor(0.95f);
        return frame;
    }

    // Shot B: a dark blue checkerboard, slowly drifting.
    private static Tensor ShotB(int i)
    {
        var y = arange(0, 96, dtype: ScalarType.Int64).view(96, 1);
        var x = arange(0, 128, dtype: ScalarType.Int64).view(1, 128).add(i);
        var checker = ((x / 16 + y / 16) % 2).to_type(ScalarType.Float32);
        return stack([checker * 0.1, checker * 0.15, checker * 0.3 + 0.2]);
    }

    [Fact]
    public void Cut_is_found_exactly_between_the_two_shots()
    {
        using var scope = NewDisposeScope();
        using var detector = new SceneCutDetector();
        var frames = Enumerable.Range(0, 5).Select(ShotA).Concat(Enumerable.Range(0, 4).Select(ShotB)).ToList();
        var cuts = frames.Select(detector.Observe).ToList();
        Assert.Equal([false, false, false, false, false, true, false, false, false], cuts);
    }

    [Fact]
    public void Byte_frames_give_the_same_decision_and_reset_forgets_the_previous_frame()
    {
        using var scope = NewDisposeScope();
        using var detector = new SceneCutDetector();
        var a = ShotA(0).mul(255).to_type(ScalarType.Byte);
        var b = ShotB(0).mul(255).to_type(ScalarType.Byte);
        Assert.False(detector.Observe(a));
        Assert.True(detector.Observe(b));
        detector.Reset();
        Assert.False(detector.Observe(a));
        using var sa = detector.Signature(ShotA(0));
        using var sb = detector.Signature(ShotB(0));
        var (diff, hist) = SceneCutDetector.Distance(sa, sb);
        Assert.True(diff > detector.DifferenceThreshold && hist > detector.HistogramThreshold, $"diff {diff}, hist {hist}");
        var (diffSame, histSame) = SceneCutDetector.Distance(sa, sa);
        Assert.Equal(0, diffSame);
        Assert.Equal(0, histSame);
    }

    [Fact]
    public void Global_brightness_flash_alone_is_not_a_cut()
    {
        using var scope = NewDisposeScope();
        var detector = new SceneCutDetector();
        using var a = detector.Signature(ShotA(0));
        using var flash = detector.Signature(ShotA(0).mul(1.05).clamp(0, 1));
        Assert.False(detector.IsCut(a, flash));
    }
}
