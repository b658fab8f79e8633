using Dloral.Lora;
using Dloral.Nn;
using static TorchSharp.torch;

namespace Dloral.Tests.Nn;

/// <summary>The polyphase form of "nearest ×2 then 3×3 conv" against the two-step form it replaces.</summary>
public class NearestUpsampleConvTests
{
    private static Tensor TwoStep(Tensor x, Tensor weight, Tensor? bias) =>
        nn.functional.conv2d(nn.functional.interpolate(x, size: [x.shape[2] * 2, x.shape[3] * 2], mode: InterpolationMode.Nearest),
            weight, bias, padding: [1, 1]);

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    [InlineData(true, false)]
    public void Equals_nearest_upsampling_followed_by_the_convolution(bool channelsLast, bool withBias)
    {
        using var scope = NewDisposeScope();
        var g = new TorchSharp.torch.Generator(7);
        var x = randn([2, 5, 7, 9], generator: g);
        var weight = randn([6, 5, 3, 3], generator: g);
        var bias = withBias ? randn([6], generator: g) : null;
        var expected = TwoStep(x, weight, bias);
        if (channelsLast) { x = MemoryFormat.ToChannelsLast(x); weight = MemoryFormat.ToChannelsLast(weight); }
        var actual = NearestUpsampleConv.Forward(x, weight, bias);
        Assert.Equal(expected.shape, actual.shape);
        Assert.Equal(channelsLast, MemoryFormat.IsChannelsLast(actual));
        double err = (actual - expected).abs().max().item<float>();
        Assert.True(err < 1e-4, $"max |polyphase − two-step| = {err}");
        Assert.True(expected.abs().max().item<float>() > 1, "the comparison must not be between near-zero tensors");
    }

    [Fact]
    public void Gradients_match_the_two_step_form()
    {
        using var scope = NewDisposeScope();
        var g = new TorchSharp.torch.Generator(11);
        var x1 = randn([1, 3, 4, 5], generator: g).requires_grad_(true);
        var w1 = randn([4, 3, 3, 3], generator: g).requires_grad_(true);
        var x2 = x1.detach().clone().requires_grad_(true);
        var w2 = w1.detach().clone().requires_grad_(true);
        var probe = randn([1, 4, 8, 10], generator: g);
        (TwoStep(x1, w1, null) * probe).sum().backward();
        (NearestUpsampleConv.Forward(x2, w2, null) * probe).sum().backward();
        Assert.True((x1.grad! - x2.grad!).abs().max().item<float>() < 1e-4);
        Assert.True((w1.grad! - w2.grad!).abs().max().item<float>() < 1e-4);
    }

    [Fact]
    public void Upsample2D_takes_the_polyphase_path_only_when_forward_is_the_plain_convolution()
    {
        using var scope = NewDisposeScope();
        using var up = new Upsample2D(4, 4, ModelOptions.Default);
        var conv = (TorchSharp.Modules.Conv2d)up.named_modules().Single(m => m.name == "conv").module;
        var x = randn([1, 4, 6, 6], generator: new TorchSharp.torch.Generator(3));
        var plain = TwoStep(x, conv.weight, conv.bias);
        Assert.True((up.call(x, null) - plain).abs().max().item<float>() < 1e-4);

        // An unmerged LoRA adapter must still be applied (two-step path through the LoRA layer).
        var lora = (LoraLayer)ModuleSurgery.Replace(up, "conv", inner => new LoraConv2d((TorchSharp.Modules.Conv2d)inner));
        lora.AddAdapter("detail", new LoraAdapterConfig(2, 2.0), new TorchSharp.torch.Generator(5));
        using (no_grad()) lora.LoraB("detail").parameters().First().fill_(0.5);
        lora.SetAdapters(["detail"]);
        Assert.False(lora.ComputesBaseOnly);
        var withAdapter = up.call(x, null);
        Assert.True((withAdapter - plain).abs().max().item<float>() > 1e-2, "the adapter changes the output");

        // Merged, the polyphase path must give the same result from the merged weight.
        lora.Merge();
        Assert.True(lora.ComputesBaseOnly);
        Assert.True((up.call(x, null) - withAdapter).abs().max().item<float>() < 1e-4);
    }
}
