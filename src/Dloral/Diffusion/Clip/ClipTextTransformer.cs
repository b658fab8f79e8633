using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Diffusion.Clip;

#pragma warning disable IDE1006, CA1707 // field names are the PyTorch state_dict names

/// <summary>CLIPTextTransformer (the <c>text_model</c> of CLIPTextModel).</summary>
public sealed class ClipTextTransformer : nn.Module<Tensor, Tensor>
{
    private readonly ClipTextEmbeddings embeddings;
    private readonly ClipEncoder encoder;
    private readonly LayerNorm final_layer_norm;

    public ClipTextTransformer(ClipTextConfig config, Device? device = null, ScalarType? dtype = null) : base(nameof(ClipTextTransformer))
    {
        embeddings = new ClipTextEmbeddings(config, device, dtype);
        encoder = new ClipEncoder(config, device, dtype);
        final_layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor inputIds) => Forward(inputIds, null);

    /// <summary>last_hidden_state [B, L, D] (after final_layer_norm). When <paramref name="hiddenStates"/>
    /// is given it receives the embeddings and each layer's output (before the final LN), owned by the caller.</summary>
    public Tensor Forward(Tensor inputIds, List<Tensor>? hiddenStates)
    {
        using var scope = NewDisposeScope();
        var h = embeddings.forward(inputIds);
        hiddenStates?.Add(h.alias().DetachFromDisposeScope());
        var length = inputIds.shape[^1];
        // transformers 4.28 _build_causal_attention_mask: finfo.min above the diagonal, added to the scores.
        var mask = full([1, 1, length, length], torch.finfo(h.dtype).min, dtype: h.dtype, device: h.device).triu(1);
        h = encoder.Forward(h, mask, hiddenStates);
        return final_layer_norm.forward(h).MoveToOuterDisposeScope();
    }
}
