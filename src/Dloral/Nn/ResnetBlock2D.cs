using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Nn;

/// <summary>
/// diffusers <c>ResnetBlock2D</c> (time_embedding_norm "default", pre-norm):
/// out = (shortcut(x) + conv2(act(norm2(conv1(act(norm1(x))) + proj(act(temb)))))) / output_scale_factor.
/// <c>temb</c> is optional: the VAE builds these blocks without a time projection.
/// </summary>
public sealed class ResnetBlock2D : nn.Module<Tensor, Tensor?, Tensor>
{
    private Dloral.Nn.GroupNorm norm1;
    private nn.Module<Tensor, Tensor> conv1;
    private nn.Module<Tensor, Tensor>? time_emb_proj;
    private Dloral.Nn.GroupNorm norm2;
    private nn.Module<Tensor, Tensor> conv2;
    private nn.Module<Tensor, Tensor>? conv_shortcut;
    private readonly Func<Tensor, Tensor> _act;
    private readonly Func<Tensor, Tensor> _actOnTemporary;
    private readonly double _outputScaleFactor;

    public long InChannels { get; }
    public long OutChannels { get; }

    public ResnetBlock2D(long inChannels, long outChannels, long? tembChannels, int groups, double eps,
        string actFn, double outputScaleFactor, ModelOptions o) : base(nameof(ResnetBlock2D))
    {
        InChannels = inChannels; OutChannels = outChannels;
        norm1 = o.GroupNorm(groups, inChannels, eps);
        conv1 = o.Conv2d(inChannels, outChannels, 3, 1, 1);
        if (tembChannels is { } tc) time_emb_proj = o.Linear(tc, outChannels);
        norm2 = o.GroupNorm(groups, outChannels, eps);
        conv2 = o.Conv2d(outChannels, outChannels, 3, 1, 1);
        if (inChannels != outChannels) conv_shortcut = o.Conv2d(inChannels, outChannels, 1, 1, 0);
        _act = Activations.Get(actFn);
        _actOnTemporary = Activations.GetOnTemporary(actFn);
        _outputScaleFactor = outputScaleFactor;
        RegisterComponents();
    }

    public override Tensor forward(Tensor input, Tensor? temb)
    {
        using var scope = NewDisposeScope();
        // GroupNorm outputs are fresh temporaries: activated in place at inference (same values, one pass less).
        var h = conv1.call(_actOnTemporary(norm1.call(input)));
        if (time_emb_proj is not null && temb is not null)
        {
            var t = time_emb_proj.call(_act(temb));
            h = h + t.unsqueeze(-1).unsqueeze(-1);
        }
        h = conv2.call(_actOnTemporary(norm2.call(h)));
        var shortcut = conv_shortcut is null ? input : conv_shortcut.call(input);
        var output = shortcut + h;
        if (_outputScaleFactor != 1.0) output = output / _outputScaleFactor;
        return output.MoveToOuterDisposeScope();
    }
}
