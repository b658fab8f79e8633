using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Lora;

/// <summary>
/// LoRA around a <see cref="Conv2d"/> (PEFT semantics): A = Conv2d(in, r) with the base kernel, stride, padding and
/// dilation and no bias; B = 1×1 Conv2d(r, out, no bias). ΔW[o,i,kh,kw] = Σ_r B[o,r]·A[r,i,kh,kw].
/// </summary>
public sealed class LoraConv2d : LoraLayer
{
    private readonly Conv2d _conv;

    public LoraConv2d(Conv2d baseLayer) : base("LoraConv2d", baseLayer)
    {
        _conv = baseLayer;
        if (baseLayer.groups != 1) throw new NotSupportedException($"LoRA on a grouped Conv2d (groups={baseLayer.groups}) is not supported");
        if (baseLayer.padding_mode != PaddingModes.Zeros) throw new NotSupportedException($"LoRA on a Conv2d with padding mode {baseLayer.padding_mode} is not supported");
        _padding = baseLayer.padding ?? (baseLayer.padding_type == Padding.Valid ? [0, 0]
            : baseLayer.kernel_size.Zip(baseLayer.dilation, (k, d) => (k - 1) * d % 2 == 0 ? (k - 1) * d / 2
                : throw new NotSupportedException("LoRA on a padding='same' Conv2d with asymmetric padding is not supported")).ToArray());
    }

    private readonly long[] _padding;

    public override Parameter BaseWeight => _conv.weight;

    protected override (nn.Module<Tensor, Tensor> A, nn.Module<Tensor, Tensor> B) CreateAdapterModules(int rank, Device device, ScalarType dtype)
    {
        var k = _conv.kernel_size;
        var s = _conv.stride;
        var d = _conv.dilation;
        var p = _padding;
        var a = nn.Conv2d(_conv.in_channels, rank, (k[0], k[1]), (s[0], s[1]), (p[0], p[1]), (d[0], d[1]), bias: false, device: device, dtype: dtype);
        var b = nn.Conv2d(rank, _conv.out_channels, (1, 1), (1, 1), bias: false, device: device, dtype: dtype);
        return (a, b);
    }

    protected override Tensor ApplyLowRank(Tensor x, Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var h = nn.functional.conv2d(x, a, null, _conv.stride, _padding, _conv.dilation);
        return nn.functional.conv2d(h, b).MoveToOuterDisposeScope();
    }

    protected override Tensor ComputeDelta(Tensor a, Tensor b)
    {
        // Same value as PEFT's conv2d(A.permute(1,0,2,3), B).permute(1,0,2,3) (or B@A for 1×1), as one matmul.
        long r = a.shape[0];
        var w = BaseWeight.shape;
        return b.reshape(w[0], r).matmul(a.reshape(r, -1)).reshape(w);
    }
}
