using Dloral.Metrics;
using Dloral.Tests.Support;
using static TorchSharp.torch;

namespace Dloral.Tests.Metrics;

public class SpyNetFlowTests
{
    [Fact]
    public void SpyNet_estimator_reproduces_the_reference_flow_from_golden_weights()
    {
        using var scope = NewDisposeScope();
        // The golden CFR weights nest SPyNet under "spynet."; the golden frames are what DLoRAL feeds it ([-1,1]).
        using var flow = SpyNetFlow.Load(GoldenData.PathOf("cfr", "weights.safetensors"), SpyNetInputRange.Signed);
        using var golden = GoldenData.Open("cfr", "case_spynet.safetensors");
        var reference = golden.Load("in.ref_72x88");
        var supporting = golden.Load("in.supp_72x88");
        var expected = golden.Load("out.forward_72x88");
        // Our frames are [0,1]: undo the mapping the estimator applies.
        var actual = flow.Estimate(((reference + 1) / 2).squeeze(0), ((supporting + 1) / 2).squeeze(0));
        TensorAssert.Close(expected, actual, atol: 1e-4, rtol: 1e-4, what: "SPyNet flow 72x88");
        Assert.Contains("SPyNet", flow.Name);
    }

    [Fact]
    public void Weights_that_are_not_spynet_give_a_clear_error()
    {
        var path = Path.Combine(Path.GetTempPath(), $"not-spynet-{Guid.NewGuid():N}.safetensors");
        using (var t = zeros(2, 2)) Dloral.Checkpoints.SafeTensorsWriter.Save(path, [new("something.weight", t)]);
        try
        {
            var ex = Assert.Throws<InvalidDataException>(() => SpyNetFlow.Load(path));
            Assert.Contains(path, ex.Message);
            Assert.Contains("not SPyNet weights", ex.Message);
        }
        finally { File.Delete(path); }
    }
}
