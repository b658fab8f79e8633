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

    [Fact]
    public void Bfloat16_inputs_wider_than_256_warp_on_an_exact_grid()
    {
        // bfloat16 holds integers exactly only up to 256: with its pixel grid in bf16, a zero flow moved columns past 256
        // of a 320-wide latent (the compact model's grid for 320x180 video), and libtorch's bf16 grid_sample crashed on
        // such CFR windows. Positions and sampling now run in float32.
        using var scope = NewDisposeScope();
        using var gen = new Generator(5);
        var x = randn([1, 4, 6, 320], generator: gen);
        var xb = x.to_type(ScalarType.BFloat16);
        var identity = FlowWarp.Warp(xb, zeros([1, 6, 320, 2], dtype: ScalarType.BFloat16));
        Assert.Equal(ScalarType.BFloat16, identity.dtype);
        // Within bf16 rounding (values ~N(0,1), ulp ≤ 0.016 below 4); a grid off by a pixel differs by ~1.
        double idErr = (identity.to_type(ScalarType.Float32) - xb.to_type(ScalarType.Float32)).abs().max().item<float>();
        Assert.True(idErr < 0.02, $"zero flow moved the bf16 input: max |diff| {idErr}");

        // A sub-pixel flow: the float32 warp of the same (bf16-rounded) values.
        var flow = full([1, 6, 320, 2], 0.5, dtype: ScalarType.Float32);
        var expected = FlowWarp.Warp(xb.to_type(ScalarType.Float32), flow).to_type(ScalarType.BFloat16);
        var actual = FlowWarp.Warp(xb, flow.to_type(ScalarType.BFloat16));
        double err = (actual.to_type(ScalarType.Float32) - expected.to_type(ScalarType.Float32)).abs().max().item<float>();
        Assert.True(err < 0.02, $"bf16 warp vs the float32 warp: max |diff| {err}");
    }
}
