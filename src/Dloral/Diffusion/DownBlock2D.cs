using Dloral.Nn;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Diffusion;

/// <summary>
/// diffusers <c>CrossAttnDownBlock2D</c> / <c>DownBlock2D</c>: (resnet → transformer)×N, then an optional stride-2
/// downsampler. <c>attentions</c> is empty for DownBlock2D. Each resnet(+attention) output and the downsampled
/// output are skip connections.
/// </summary>
public sealed class DownBlock2D : UNetDownBlock
{
    private ModuleList<Transformer2DModel> attentions;
    private ModuleList<ResnetBlock2D> resnets;
    private ModuleList<Downsample2D> downsamplers;

    public override int ResidualCount => resnets.Count + downsamplers.Count;

    /// <summary>Builds the block; <c>heads</c> null gives a plain DownBlock2D without attention.</summary>
    public DownBlock2D(string blockType, int numLayers, long inChannels, long outChannels, long tembChannels, bool addDownsample,
        double eps, string actFn, int groups, long downsamplePadding, long? heads, int transformerLayers, long? crossAttentionDim,
        bool useLinearProjection, ModelOptions o) : base(blockType)
    {
        var r = new List<ResnetBlock2D>();
        var a = new List<Transformer2DModel>();
        for (int i = 0; i < numLayers; i++)
        {
            r.Add(new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, tembChannels, groups, eps, actFn, 1.0, o));
            if (heads is { } nh)
                a.Add(new Transformer2DModel(nh, outChannels / nh, outChannels, transformerLayers, crossAttentionDim, groups, useLinearProjection, o));
        }
        resnets = new ModuleList<ResnetBlock2D>(r.ToArray());
        attentions = new ModuleList<Transformer2DModel>(a.ToArray());
        downsamplers = addDownsample
            ? new ModuleList<Downsample2D>(new Downsample2D(outChannels, outChannels, downsamplePadding, o))
            : new ModuleList<Downsample2D>();
        RegisterComponents();
    }

    public override Tensor Forward(Tensor hidden, Tensor temb, Tensor? encoderHiddenStates, List<Tensor> residuals)
    {
        using var scope = NewDisposeScope();
        for (int i = 0; i < resnets.Count; i++)
        {
            hidden = resnets[i].call(hidden, temb);
            if (attentions.Count > 0) hidden = attentions[i].call(hidden, encoderHiddenStates);
            residuals.Add(hidden.MoveToOuterDisposeScope());
        }
        foreach (var down in downsamplers)
        {
            hidden = down.call(hidden);
            residuals.Add(hidden.MoveToOuterDisposeScope());
        }
        return hidden.MoveToOuterDisposeScope();
    }
}
