using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Nn;

/// <summary>
/// diffusers <c>Attention</c> with the default processor: to_q/to_k/to_v projections, multi-head
/// softmax(QKᵀ·d^-½)V via <c>scaled_dot_product_attention</c> (the scale is 1/√head_dim, as in diffusers),
/// then <c>to_out.0</c>. Accepts [B,N,C] sequences or [B,C,H,W] maps (the VAE mid-block form, with
/// <c>group_norm</c> and a residual connection).
/// </summary>
public sealed class Attention : nn.Module<Tensor, Tensor?, Tensor>
{
    private Dloral.Nn.GroupNorm? group_norm;
    private nn.Module<Tensor, Tensor> to_q;
    private nn.Module<Tensor, Tensor> to_k;
    private nn.Module<Tensor, Tensor> to_v;
    // to_out.0 is the Linear and to_out.1 a Dropout (identity at inference), as in diffusers' state_dict.
    private ModuleList<nn.Module<Tensor, Tensor>> to_out;
    private readonly long _heads;
    private readonly bool _residualConnection;
    private readonly double _rescaleOutputFactor;

    public long Heads => _heads;

    public Attention(long queryDim, long? crossAttentionDim, long heads, long dimHead, ModelOptions o,
        bool bias = false, bool outBias = true, int? normNumGroups = null, double eps = 1e-5,
        bool residualConnection = false, double rescaleOutputFactor = 1.0) : base(nameof(Attention))
    {
        long inner = heads * dimHead;
        long kvDim = crossAttentionDim ?? queryDim;
        _heads = heads;
        _residualConnection = residualConnection;
        _rescaleOutputFactor = rescaleOutputFactor;
        if (normNumGroups is { } g) group_norm = o.GroupNorm(g, queryDim, eps);
        to_q = o.Linear(queryDim, inner, bias);
        to_k = o.Linear(kvDim, inner, bias);
        to_v = o.Linear(kvDim, inner, bias);
        to_out = new ModuleList<nn.Module<Tensor, Tensor>>(o.Linear(inner, queryDim, outBias), nn.Dropout(0.0));
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden, Tensor? encoderHiddenStates)
    {
        using var scope = NewDisposeScope();
        var residual = hidden;
        long b = hidden.shape[0], c = 0, h = 0, w = 0;
        bool spatial = hidden.dim() == 4;
        if (spatial)
        {
            (c, h, w) = (hidden.shape[1], hidden.shape[2], hidden.shape[3]);
            hidden = hidden.reshape(b, c, h * w).transpose(1, 2);
        }
        if (group_norm is not null) hidden = group_norm.call(hidden.transpose(1, 2)).transpose(1, 2);
        var context = encoderHiddenStates ?? hidden;
        var q = SplitHeads(to_q.call(hidden));
        var k = SplitHeads(to_k.call(context));
        var v = SplitHeads(to_v.call(context));
        var attn = nn.functional.scaled_dot_product_attention(q, k, v);
        // [B, heads, N, d] → [B, N, heads·d]
        var merged = attn.transpose(1, 2).reshape(b, attn.shape[2], -1);
        var output = to_out[0].call(merged);
        if (spatial) output = output.transpose(-1, -2).reshape(b, c, h, w);
        if (_residualConnection) output = output + residual;
        if (_rescaleOutputFactor != 1.0) output = output / _rescaleOutputFactor;
        return output.MoveToOuterDisposeScope();
    }

    private Tensor SplitHeads(Tensor x) => x.view(x.shape[0], x.shape[1], _heads, -1).transpose(1, 2);
}
