using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Tests.Support;

/// <summary>
/// Makes an untrained compact UNet change its input: its conv_out starts at zero (the network is the identity on its
/// bicubic input), which would hide what a test looks for (recurrence, colour fix, symmetry).
/// </summary>
public static class CompactPerturbation
{
    /// <summary>conv_out's weight ← N(0, 0.05²) from a generator seeded with <paramref name="seed"/>.</summary>
    public static void PerturbConvOut(nn.Module unet, ulong seed)
    {
        using var grad = no_grad();
        using var g = new Generator(seed);
        foreach (var (name, p) in unet.named_parameters())
            if (name == "conv_out.base_layer.weight") p.copy_(randn(p.shape, generator: g).mul_(0.05));
    }
}
