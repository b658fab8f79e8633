using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Diffusion.Clip;

#pragma warning disable IDE1006, CA1707 // field names are the PyTorch state_dict names

/// <summary>
/// CLIPAttention (transformers 4.28): multi-head self-attention with an additive causal mask,
/// computed in the reference's order (q scaled before QKᵀ, mask added, softmax) so float32 results
/// track it closely. Field order k, v, q, out follows the reference state_dict order.
/// </summary>
public sealed class ClipAttention : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Linear k_proj;
    private readonly Linear v_proj;
    private readonly Linear q_proj;
    private readonly Linear out_proj;
    private readonly int _heads;
    private readonly int _headDim;
    private readonly double _scale;

    public ClipAttention(ClipTextConfig config, Device? device = null, ScalarType? dtype = null) : base(nameof(ClipAttention))
    {
        var d = config.HiddenSize;
        k_proj = nn.Linear(d, d, device: device, dtype: dtype);
        v_proj = nn.Linear(d, d, device: device, dtype: dtype);
        q_proj = nn.Linear(d, d, device: device, dtype: dtype);
        out_proj = nn.Linear(d, d, device: device, dtype: dtype);
        _heads = config.NumAttentionHeads;
        _headDim = config.HeadDim;
        _scale = Math.Pow(_headDim, -0.5);
        RegisterComponents();
    }

    /// <param name="x">[B, L, D]</param>
    /// <param name="causalMask">additive [1, 1, L, L] (0 on and below the diagonal, dtype min above).</param>
    public override Tensor forward(Tensor x, Tensor causalMask)
    {
        using var scope = NewDisposeScope();
        var (b, l) = (x.shape[0], x.shape[1]);
        Tensor Heads(Tensor t) => t.view(b, l, _heads, _headDim).transpose(1, 2);
        var q = Heads(q_proj.forward(x) * _scale);
        var k = Heads(k_proj.forward(x));
        var v = Heads(v_proj.forward(x));
        var weights = q.matmul(k.transpose(-1, -2)) + causalMask;
        var probs = weights.softmax(-1);
        var o = probs.matmul(v).transpose(1, 2).reshape(b, l, _heads * _headDim);
        return out_proj.forward(o).MoveToOuterDisposeScope();
    }
}
