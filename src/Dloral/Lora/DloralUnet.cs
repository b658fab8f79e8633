using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Lora;

/// <summary>
/// Turns a diffusers SD UNet into DLoRAL's: conv_in widened to 8 input channels ([warped previous ‖ fused current]
/// latents) and the six C-/D-LoRA adapters injected with the reference's target lists.
/// </summary>
public static class DloralUnet
{
    /// <summary>DLoRAL's UNet input channels (two 4-channel latents).</summary>
    public const int InChannels = 8;

    /// <summary>
    /// Replaces conv_in (C→out) by a Conv2d(8→out) with the same kernel/padding whose two 4-channel halves both hold the
    /// old weight, as <c>initialize_unet</c> does. The bias is kept (the reference drops it for the new conv's random
    /// init; a DLoRAL checkpoint overwrites both anyway, and a kept bias keeps construction deterministic).
    /// </summary>
    public static void WidenConvIn(nn.Module unet, int inChannels = InChannels)
    {
        if (ModuleTree.Get(unet, "conv_in") is not Conv2d old)
            throw new InvalidOperationException("conv_in is not a plain Conv2d (already wrapped by LoRA?): widen it before injecting adapters");
        long c = old.in_channels;
        if (c == inChannels) return;
        if (inChannels % c != 0) throw new ArgumentException($"cannot widen conv_in from {c} to {inChannels} channels", nameof(inChannels));
        var k = old.kernel_size;
        var p = old.padding ?? throw new NotSupportedException("conv_in with symbolic padding is not supported");
        var w = old.weight;
        var conv = nn.Conv2d(inChannels, old.out_channels, (k[0], k[1]), (old.stride[0], old.stride[1]), (p[0], p[1]),
                             bias: old.bias is not null, device: w.device, dtype: w.dtype);
        using (no_grad())
        {
            conv.weight.copy_(w.repeat(1, inChannels / c, 1, 1));
            if (old.bias is not null) conv.bias!.copy_(old.bias);
        }
        ModuleTree.Replace(unet, "conv_in", conv);
        old.Dispose();
    }

    /// <summary>
    /// Widens conv_in (if needed) and injects the six adapters. Target lists default to the reference rule applied to
    /// this UNet; pass the checkpoint's lists to follow a trained model exactly.
    /// </summary>
    public static DloralTargetModules Prepare(nn.Module unet, DloralTargetModules? targets = null, int rankQuality = 4, int rankConsistency = 4,
                                             double loraAlpha = 8.0, Generator? generator = null)
    {
        WidenConvIn(unet);
        targets ??= DloralAdapters.TargetsOf(unet);
        DloralAdapters.Inject(unet, targets, rankQuality, rankConsistency, loraAlpha, generator);
        return targets;
    }
}
