using Dloral.Temporal;
using Dloral.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Temporal;

public class FlowWarpTests
{
    private readonly ITestOutputHelper _output;

    public FlowWarpTests(ITestOutputHelper output)
    {
        _output = output;
        TorchRuntime.Initialize();
    }

    [Theory]
    [InlineData("flow_int", "int_zeros", GridSampleMode.Bilinear, GridSamplePaddingMode.Zeros)]
    [InlineData("flow_rnd", "rnd_zeros", GridSampleMode.Bilinear, GridSamplePaddingMode.Zeros)]
    [InlineData("flow_rnd", "rnd_border", GridSampleMode.Bilinear, GridSamplePaddingMode.Border)]
    [InlineData("flow_rnd", "rnd_nearest", GridSampleMode.Nearest, GridSamplePaddingMode.Zeros)]
    public void Matches_reference_flow_warp(string flowName, string outName, GridSampleMode mode, GridSamplePaddingMode padding)
    {
        using var f = GoldenData.Open("cfr", "case_flow_warp.safetensors");
        using var scope = NewDisposeScope();
        var x = f.Load("in.x");
        var flow = f.Load("in." + flowName);
        var expected = f.Load("out." + outName);
        var actual = FlowWarp.Warp(x, flow, mode, padding);
        _output.WriteLine($"{outName}: max abs diff {TensorAssert.MaxAbsDiff(expected, actual):G3}");
        TensorAssert.Close(expected, actual, atol: 1e-6, rtol: 1e-5, what: outName);
    }

    [Fact]
    public void Integer_flow_is_a_shift_with_zero_fill()
    {
        using var scope = NewDisposeScope();
        var x = arange(0, 2 * 3 * 5 * 6, dtype: ScalarType.Float32).view(2, 3, 5, 6);
        var flow = zeros(2, 5, 6, 2);
        flow[.., .., .., 0] = tensor(2f);  // sample 2 px to the right
        flow[.., .., .., 1] = tensor(-1f); // and 1 px up
        var y = FlowWarp.Warp(x, flow);
        // y[i,j] = x[i-1, j+2] where inside, else 0.
        TensorAssert.Close(x[.., .., 0..4, 2..6], y[.., .., 1..5, 0..4], atol: 1e-5, rtol: 0, what: "interior");
        Assert.Equal(0, y[.., .., 0, ..].abs().sum().item<float>());
        Assert.Equal(0, y[.., .., .., 4..6].abs().sum().item<float>());
    }

    [Fact]
    public void Mismatched_sizes_are_rejected()
    {
        using var scope = NewDisposeScope();
        var ex = Assert.Throws<ArgumentException>(() => FlowWarp.Warp(zeros(1, 3, 8, 8), zeros(1, 8, 9, 2)));
        Assert.Contains("differ", ex.Message);
    }
}
