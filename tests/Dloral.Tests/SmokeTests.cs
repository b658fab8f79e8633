using TorchSharp;

namespace Dloral.Tests;

public class SmokeTests
{
    [Fact]
    public void TorchSharp_loads_and_computes()
    {
        using var t = torch.ones(3, 3);
        Assert.Equal(9f, t.sum().item<float>());
    }
}
