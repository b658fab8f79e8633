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
/// multiple of the UNet's total downsampling) followed by a 3×3 conv.
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
        var up = nn.functional.interpolate(x, size: size, mode: InterpolationMode.Nearest);
        return conv.call(up).MoveToOuterDisposeScope();
    }
}
