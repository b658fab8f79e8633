using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Nn;

/// <summary>
/// diffusers <c>BasicTransformerBlock</c> (norm_type "layer_norm"): self-attention (attn1), cross-attention
/// (attn2) on the text states, GEGLU feed-forward; each pre-normed and residual.
/// </summary>
public sealed class BasicTransformerBlock : nn.Module<Tensor, Tensor?, Tensor>
{
    private LayerNorm norm1;
    private Attention attn1;
    private LayerNorm norm2;
    private Attention attn2;
    private LayerNorm norm3;
    private FeedForward ff;

    public BasicTransformerBlock(long dim, long heads, long headDim, long? crossAttentionDim, ModelOptions o,
        bool attentionBias = false, double normEps = 1e-5) : base(nameof(BasicTransformerBlock))
    {
        norm1 = o.LayerNorm(dim, normEps);
        attn1 = new Attention(dim, null, heads, headDim, o, bias: attentionBias);
        norm2 = o.LayerNorm(dim, normEps);
        attn2 = new Attention(dim, crossAttentionDim, heads, headDim, o, bias: attentionBias);
        norm3 = o.LayerNorm(dim, normEps);
        ff = new FeedForward(dim, o);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden, Tensor? encoderHiddenStates)
    {
        using var scope = NewDisposeScope();
        hidden = attn1.call(norm1.call(hidden), null) + hidden;
        hidden = attn2.call(norm2.call(hidden), encoderHiddenStates) + hidden;
        hidden = ff.call(norm3.call(hidden)) + hidden;
        return hidden.MoveToOuterDisposeScope();
    }
}
