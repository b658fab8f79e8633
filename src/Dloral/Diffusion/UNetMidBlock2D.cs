using Dloral.Nn;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Diffusion;

/// <summary>
/// diffusers <c>UNetMidBlock2D</c> as the VAE uses it: resnet, then (single-head spatial attention with group_norm and a
/// residual connection → resnet). No time embedding.
/// </summary>
public sealed class UNetMidBlock2D : nn.Module<Tensor, Tensor>
{
    private ModuleList<Attention> attentions;
    private ModuleList<ResnetBlock2D> resnets;

    public UNetMidBlock2D(long inChannels, double eps, string actFn, int groups, long attentionHeadDim, bool addAttention, ModelOptions o)
        : base(nameof(UNetMidBlock2D))
    {
        var r = new List<ResnetBlock2D> { new(inChannels, inChannels, null, groups, eps, actFn, 1.0, o) };
        var a = new List<Attention>();
        if (addAttention)
            a.Add(new Attention(inChannels, null, inChannels / attentionHeadDim, attentionHeadDim, o, bias: true,
                normNumGroups: groups, eps: eps, residualConnection: true));
        r.Add(new ResnetBlock2D(inChannels, inChannels, null, groups, eps, actFn, 1.0, o));
        attentions = new ModuleList<Attention>(a.ToArray());
        resnets = new ModuleList<ResnetBlock2D>(r.ToArray());
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        hidden = resnets[0].call(hidden, null);
        if (attentions.Count > 0) hidden = attentions[0].call(hidden, null);
        hidden = resnets[1].call(hidden, null);
        return hidden.MoveToOuterDisposeScope();
    }
}
