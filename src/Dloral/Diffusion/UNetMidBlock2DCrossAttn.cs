using Dloral.Nn;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Diffusion;

/// <summary>diffusers <c>UNetMidBlock2DCrossAttn</c>: resnet, then (transformer → resnet)×num_layers.</summary>
public sealed class UNetMidBlock2DCrossAttn : UNetMidBlock
{
    private ModuleList<Transformer2DModel> attentions;
    private ModuleList<ResnetBlock2D> resnets;

    public UNetMidBlock2DCrossAttn(long inChannels, long tembChannels, double eps, string actFn, double outputScaleFactor, int groups,
        long heads, int transformerLayers, long? crossAttentionDim, bool useLinearProjection, ModelOptions o, int numLayers = 1)
        : base(nameof(UNetMidBlock2DCrossAttn))
    {
        var r = new List<ResnetBlock2D> { new(inChannels, inChannels, tembChannels, groups, eps, actFn, outputScaleFactor, o) };
        var a = new List<Transformer2DModel>();
        for (int i = 0; i < numLayers; i++)
        {
            a.Add(new Transformer2DModel(heads, inChannels / heads, inChannels, transformerLayers, crossAttentionDim, groups, useLinearProjection, o));
            r.Add(new ResnetBlock2D(inChannels, inChannels, tembChannels, groups, eps, actFn, outputScaleFactor, o));
        }
        attentions = new ModuleList<Transformer2DModel>(a.ToArray());
        resnets = new ModuleList<ResnetBlock2D>(r.ToArray());
        RegisterComponents();
    }

    public override Tensor Forward(Tensor hidden, Tensor temb, Tensor? encoderHiddenStates)
    {
        using var scope = NewDisposeScope();
        hidden = resnets[0].call(hidden, temb);
        for (int i = 0; i < attentions.Count; i++)
        {
            hidden = attentions[i].call(hidden, encoderHiddenStates);
            hidden = resnets[i + 1].call(hidden, temb);
        }
        return hidden.MoveToOuterDisposeScope();
    }
}
