using static TorchSharp.torch;

namespace Dloral.Nn;

/// <summary>
/// Channels-last (NHWC-strided) layout helpers. oneDNN's CPU convolutions run ~1.5× faster on channels-last inputs and
/// weights (fp32 and bf16 alike, measured on this machine); TorchSharp has no memory_format argument, so the layout is
/// produced with a permute → contiguous → permute, which keeps the logical NCHW shape.
/// </summary>
public static class MemoryFormat
{
    /// <summary>A 4-D tensor with NHWC strides (a no-op if it already has them).</summary>
    public static Tensor ToChannelsLast(Tensor x)
    {
        if (x.dim() != 4 || IsChannelsLast(x)) return x.alias();
        return x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
    }

    public static bool IsChannelsLast(Tensor x) =>
        x.dim() == 4 && x.stride(1) == 1 && x.stride(3) == x.shape[1] && x.stride(2) == x.shape[1] * x.shape[3];

    /// <summary>Re-lays out every 4-D parameter of <paramref name="module"/> (conv weights) as channels-last, in place.</summary>
    public static void ParametersToChannelsLast(nn.Module module)
    {
        using var guard = no_grad();
        foreach (var p in module.parameters())
        {
            if (p.dim() != 4 || p.device_type == TorchSharp.DeviceType.META || IsChannelsLast(p)) continue;
            using var relaid = ToChannelsLast(p);
            p.set_(relaid);
        }
    }
}
