using Dloral.Nn;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Diffusion;

/// <summary>
/// diffusers <c>CrossAttnUpBlock2D</c> / <c>UpBlock2D</c>: for each resnet, concatenate the last skip tensor on
/// channels, resnet (→ transformer); then an optional nearest ×2 upsampler. <c>attentions</c> is empty for UpBlock2D.
/// </summary>
public sealed class UpBlock2D : UNetUpBlock
{
    private ModuleList<Transformer2DModel> attentions;
    private ModuleList<ResnetBlock2D> resnets;
    private ModuleList<Upsample2D> upsamplers;

    public override int ResnetCount => resnets.Count;

    public UpBlock2D(string blockType, int numLayers, long inChannels, long outChannels, long prevOutputChannel, long tembChannels,
        bool addUpsample, double eps, string actFn, int groups, long? heads, int transformerLayers, long? crossAttentionDim,
        bool useLinearProjection, ModelOptions o) : base(blockType)
    {
        var r = new List<ResnetBlock2D>();
        var a = new List<Transformer2DModel>();
        for (int i = 0; i < numLayers; i++)
        {
            long resSkipChannels = i == numLayers - 1 ? inChannels : outChannels;
            long resnetIn = i == 0 ? prevOutputChannel : outChannels;
            r.Add(new ResnetBlock2D(resnetIn + resSkipChannels, outChannels, tembChannels, groups, eps, actFn, 1.0, o));
            if (heads is { } nh)
                a.Add(new Transformer2DModel(nh, outChannels / nh, outChannels, transformerLayers, crossAttentionDim, groups, useLinearProjection, o));
        }
        resnets = new ModuleList<ResnetBlock2D>(r.ToArray());
        attentions = new ModuleList<Transformer2DModel>(a.ToArray());
        upsamplers = addUpsample
            ? new ModuleList<Upsample2D>(new Upsample2D(outChannels, outChannels, o))
            : new ModuleList<Upsample2D>();
        RegisterComponents();
    }

    public override Tensor Forward(Tensor hidden, IReadOnlyList<Tensor> skips, Tensor temb, Tensor? encoderHiddenStates, long[]? upsampleSize)
    {
        if (skips.Count != resnets.Count) throw new ArgumentException($"{GetName()} needs {resnets.Count} skip tensors, got {skips.Count}");
        using var scope = NewDisposeScope();
        for (int i = 0; i < resnets.Count; i++)
        {
            var skip = skips[skips.Count - 1 - i];
            hidden = cat([hidden, skip], 1);
            hidden = resnets[i].call(hidden, temb);
            if (attentions.Count > 0) hidden = attentions[i].call(hidden, encoderHiddenStates);
        }
        foreach (var up in upsamplers) hidden = up.call(hidden, upsampleSize);
        return hidden.MoveToOuterDisposeScope();
    }
}
