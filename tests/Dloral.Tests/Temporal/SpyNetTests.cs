using Dloral.Temporal;
using Dloral.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Temporal;

public class SpyNetTests(ITestOutputHelper output)
{
    private void Check(Tensor expected, Tensor actual, string what)
    {
        output.WriteLine($"{what}: max abs diff {TensorAssert.MaxAbsDiff(expected, actual):G3}");
        TensorAssert.Close(expected, actual, atol: 1e-5, rtol: 1e-4, what: what);
    }

    private static readonly Lazy<CrossFrameRetrieval> Cfr = new(CfrGolden.Load);

    [Fact]
    public void Compute_flow_64_matches_reference_level_by_level()
    {
        using var f = GoldenData.Open("cfr", "case_spynet.safetensors");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var residuals = new List<Tensor>();
        var flow = Cfr.Value.SpyNet.ComputeFlow(f.Load("in.ref_64"), f.Load("in.supp_64"), residuals);
        Assert.Equal(SpyNet.Levels, residuals.Count);
        for (int i = 0; i < SpyNet.Levels; i++)
            Check(f.Load($"act.basic_module.{i}"), residuals[i], $"basic_module.{i}");
        Check(f.Load("out.compute_flow_64"), flow, "compute_flow_64");
    }

    [Fact]
    public void Forward_72x88_resizes_to_multiple_of_32_and_scales_flow_back()
    {
        using var f = GoldenData.Open("cfr", "case_spynet.safetensors");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var flow = Cfr.Value.SpyNet.forward(f.Load("in.ref_72x88"), f.Load("in.supp_72x88"));
        Assert.Equal(new long[] { 1, 2, 72, 88 }, flow.shape);
        Check(f.Load("out.forward_72x88"), flow, "forward_72x88");
    }

    [Fact]
    public void Buffers_and_parameters_use_reference_names()
    {
        var names = new SpyNet().state_dict().Keys.ToList();
        Assert.Contains("mean", names);
        Assert.Contains("std", names);
        Assert.Contains("basic_module.0.basic_module.0.conv.weight", names);
        Assert.Contains("basic_module.5.basic_module.4.conv.bias", names);
        Assert.Equal(2 + 6 * 5 * 2, names.Count);
    }
}
