using Dloral.Metrics;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Tests.Metrics;

public class TemporalMetricsTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void Lucas_kanade_recovers_a_subpixel_translation()
    {
        using var scope = NewDisposeScope();
        // from(p) = to(p + d) means the content of `to` sits d further along: flow = d.
        double dx = 1.37, dy = -0.62;
        var from = TestImages.Texture(96, 112);
        var to = TestImages.Texture(96, 112, -dx, -dy);
        var flow = new LucasKanadeFlow().Estimate(from, to);
        Assert.Equal(new long[] { 1, 2, 96, 112 }, flow.shape);
        var inner = flow[.., .., 12..84, 12..100];
        double ex = (inner[.., 0] - dx).abs().mean().item<float>();
        double ey = (inner[.., 1] - dy).abs().mean().item<float>();
        output.WriteLine($"sub-pixel translation ({dx}, {dy}): mean flow error x {ex:F4}, y {ey:F4} px");
        Assert.True(ex < 0.05 && ey < 0.05, $"mean flow error x {ex:F4}, y {ey:F4} px");
    }

    [Fact]
    public void Lucas_kanade_recovers_a_large_shift_through_the_pyramid()
    {
        using var scope = NewDisposeScope();
        var from = TestImages.Texture(128, 128);
        var to = TestImages.Texture(128, 128, -7.5, 4.25);
        var flow = new LucasKanadeFlow().Estimate(from, to);
        var inner = flow[.., .., 20..108, 20..108];
        Assert.InRange(inner[.., 0].median().item<float>(), 7.3, 7.7);
        Assert.InRange(inner[.., 1].median().item<float>(), -4.45, -4.05);
    }

    /// <summary>A camera pan: frame t is the window of a big texture starting s·t pixels to the right.</summary>
    private static Tensor[] Pan(int frames, int shift, int h = 64, int w = 80)
    {
        var big = TestImages.Texture(h, w + shift * frames);
        return Enumerable.Range(0, frames).Select(t => big[.., .., (shift * t)..(shift * t + w)].contiguous()).ToArray();
    }

    [Fact]
    public void Known_integer_shift_with_the_right_flow_gives_zero_warping_error()
    {
        using var scope = NewDisposeScope();
        var f = Pan(2, 3);
        // frame1(p) = frame0(p + 3): flow on frame 1 into frame 0 is +3 px in x.
        var flow = zeros(1, 2, 64, 80);
        flow[.., 0] = 3f;
        var mask = FlowWarping.InsideMask(flow);
        var we = TemporalMetrics.WarpingError(f[0], f[1], flow, mask);
        Assert.True(we.MeanAbsolute < 1e-6, $"warping error {we.MeanAbsolute}");
        Assert.Equal(77.0 / 80.0, we.ValidFraction, 6);
        // Zero flow instead: the error is the plain frame difference, far from zero.
        var zero = zeros(1, 2, 64, 80);
        var plain = TemporalMetrics.WarpingError(f[0], f[1], zero, ones(1, 1, 64, 80));
        Assert.Equal((f[1] - f[0]).abs().mean().item<float>(), plain.MeanAbsolute, 5);
        Assert.True(plain.MeanAbsolute > 0.02);
    }

    [Fact]
    public void Estimated_flow_on_a_pan_gives_near_zero_warping_error()
    {
        using var scope = NewDisposeScope();
        var f = Pan(2, 2);
        var lk = new LucasKanadeFlow();
        var back = lk.Estimate(f[1], f[0]);
        var fwd = lk.Estimate(f[0], f[1]);
        var mask = TemporalMetrics.ValidMask(back, fwd);
        var we = TemporalMetrics.WarpingError(f[0], f[1], back, mask);
        output.WriteLine($"pan with estimated flow: warping error {we.MeanAbsolute:G4}, valid fraction {we.ValidFraction:F3}");
        Assert.True(we.ValidFraction > 0.85, $"valid fraction {we.ValidFraction}");
        Assert.True(we.MeanAbsolute < 2e-3, $"warping error {we.MeanAbsolute}");
    }

    [Fact]
    public void Flicker_raises_the_warping_error_and_tof_sees_different_motion()
    {
        using var scope = NewDisposeScope();
        var stable = Pan(3, 2);
        var flicker = stable.Select((x, t) => (x * (t % 2 == 0 ? 1.0f : 0.85f)).clamp(0, 1)).ToArray();
        var lk = new LucasKanadeFlow();
        double Sum(Tensor[] v)
        {
            double s = 0;
            for (int t = 1; t < v.Length; t++)
            {
                // Flow on the stable sequence plays the ground truth.
                var back = lk.Estimate(stable[t], stable[t - 1]);
                var mask = TemporalMetrics.ValidMask(back, lk.Estimate(stable[t - 1], stable[t]));
                s += TemporalMetrics.WarpingError(v[t - 1], v[t], back, mask).MeanAbsolute;
            }
            return s;
        }
        double es = Sum(stable), ef = Sum(flicker);
        output.WriteLine($"warping error sum: stable {es:G4}, flicker {ef:G4}");
        Assert.True(ef > 10 * es && ef > 0.02, $"stable {es}, flicker {ef}");

        var still = Enumerable.Repeat(stable[0], 2).ToArray();
        double tofSame = TemporalMetrics.FlowDifference(lk.Estimate(stable[0], stable[1]), lk.Estimate(stable[0], stable[1]));
        double tofStill = TemporalMetrics.FlowDifference(lk.Estimate(still[0], still[1]), lk.Estimate(stable[0], stable[1]));
        Assert.Equal(0, tofSame, 9);
        Assert.InRange(tofStill, 0.8, 1.2); // x moves 2 px, y 0: mean over both components ≈ 1
    }
}
