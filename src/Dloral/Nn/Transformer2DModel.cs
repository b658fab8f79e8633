using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Nn;

/// <summary>
/// diffusers <c>Transformer2DModel</c> for continuous inputs: GroupNorm (eps 1e-6), proj_in (Linear when
/// use_linear_projection, else 1×1 conv), BasicTransformerBlocks over the H·W tokens, proj_out, residual.
/// </summary>
public sealed class Transformer2DModel : nn.Module<Tensor, Tensor?, Tensor>
{
    private Dloral.Nn.GroupNorm norm;
    private nn.Module<Tensor, Tensor> proj_in;
    private ModuleList<BasicTransformerBlock> transformer_blocks;
    private nn.Module<Tensor, Tensor> proj_out;
    private readonly bool _useLinearProjection;
    private readonly bool _channelsLast;

    public Transformer2DModel(long heads, long headDim, long inChannels, int numLayers, long? crossAttentionDim,
        int normNumGroups, bool useLinearProjection, ModelOptions o) : base(nameof(Transformer2DModel))
    {
        long inner = heads * headDim;
        _useLinearProjection = useLinearProjection;
        _channelsLast = o.ChannelsLast;
        norm = o.GroupNorm(normNumGroups, inChannels, 1e-6);
        proj_in = useLinearProjection ? o.Linear(inChannels, inner) : o.Conv2d(inChannels, inner, 1);
        transformer_blocks = new ModuleList<BasicTransformerBlock>(
            Enumerable.Range(0, numLayers).Select(_ => new BasicTransformerBlock(inner, heads, headDim, crossAttentionDim, o)).ToArray());
        proj_out = useLinearProjection ? o.Linear(inner, inChannels) : o.Conv2d(inner, inChannels, 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden, Tensor? encoderHiddenStates)
    {
        using var scope = NewDisposeScope();
        long b = hidden.shape[0], h = hidden.shape[2], w = hidden.shape[3];
        var residual = hidden;
        var x = norm.call(hidden);
        if (!_useLinearProjection) x = proj_in.call(x);
        long inner = x.shape[1];
        x = x.permute(0, 2, 3, 1).reshape(b, h * w, inner);
        if (_useLinearProjection) x = proj_in.call(x);
        foreach (var block in transformer_blocks) x = block.call(x, encoderHiddenStates);
        if (_useLinearProjection) x = proj_out.call(x);
        x = x.reshape(b, h, w, x.shape[2]).permute(0, 3, 1, 2);
        // The permuted view is channels-last already; the NCHW model makes it contiguous like the reference.
        if (!_channelsLast) x = x.contiguous();
        if (!_useLinearProjection) x = proj_out.call(x);
        return (x + residual).MoveToOuterDisposeScope();
    }
}
