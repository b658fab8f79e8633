using static TorchSharp.torch;

namespace Dloral.Nn;

/// <summary>
/// diffusers <c>Downsample2D</c> with use_conv: a stride-2 3×3 conv. With padding 0 (the VAE) the input is first
/// padded by one pixel on the right and bottom only, as the reference does.
/// </summary>
public sealed class Downsample2D : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> conv;
    private readonly long _padding;

    public Downsample2D(long channels, long outChannels, long padding, ModelOptions o) : base(nameof(Downsample2D))
    {
        _padding = padding;
        conv = o.Conv2d(channels, outChannels, 3, 2, padding);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        if (_padding == 0) x = nn.functional.pad(x, [0, 1, 0, 1], TorchSharp.PaddingModes.Constant, 0);
        return conv.call(x).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// diffusers <c>Upsample2D</c> with use_conv: nearest ×2 (or to an explicit size, used when the latent is not a
/// multiple of the UNet's total downsampling) followed by a 3×3 conv. An exact ×2 with a plain convolution (or a LoRA
/// layer whose adapters are merged or off) runs as <see cref="NearestUpsampleConv"/> on the low-resolution input:
/// the same result up to float rounding, 0.44× the multiply-adds.
/// </summary>
public sealed class Upsample2D : nn.Module<Tensor, long[]?, Tensor>
{
    private nn.Module<Tensor, Tensor> conv;

    public Upsample2D(long channels, long outChannels, ModelOptions o) : base(nameof(Upsample2D))
    {
        conv = o.Conv2d(channels, outChannels, 3, 1, 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, long[]? outputSize)
    {
        using var scope = NewDisposeScope();
        var size = outputSize ?? [x.shape[2] * 2, x.shape[3] * 2];
        if (size[0] == x.shape[2] * 2 && size[1] == x.shape[3] * 2 && PlainConvolution() is { } plain)
            return NearestUpsampleConv.Forward(x, plain.weight, plain.bias).MoveToOuterDisposeScope();
        var up = nn.functional.interpolate(x, size: size, mode: InterpolationMode.Nearest);
        return conv.call(up).MoveToOuterDisposeScope();
    }

    /// <summary>The convolution when forward is exactly that Conv2d (3×3, stride 1, padding 1, zero padding), else null.</summary>
    private TorchSharp.Modules.Conv2d? PlainConvolution()
    {
        var c = conv switch
        {
            TorchSharp.Modules.Conv2d plain => plain,
            Dloral.Lora.LoraLayer { ComputesBaseOnly: true, BaseLayer: TorchSharp.Modules.Conv2d wrapped } => wrapped,
            _ => null,
        };
        if (c is null || c.groups != 1 || c.padding_mode != TorchSharp.PaddingModes.Zeros) return null;
        bool unit(long[]? v) => v is not null && v.All(e => e == 1);
        return c.kernel_size.All(k => k == 3) && unit(c.stride) && unit(c.padding) && unit(c.dilation) ? c : null;
    }
}
