using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Diffusion.Clip;

#pragma warning disable IDE1006, CA1707 // field names are the PyTorch state_dict names

/// <summary>CLIPTextEmbeddings: token embedding + learned absolute position embedding, with the
/// persistent int64 <c>position_ids</c> buffer transformers 4.28 keeps in its state_dict.</summary>
public sealed class ClipTextEmbeddings : nn.Module<Tensor, Tensor>
{
    private readonly Tensor position_ids;
    private readonly Embedding token_embedding;
    private readonly Embedding position_embedding;

    public ClipTextEmbeddings(ClipTextConfig config, Device? device = null, ScalarType? dtype = null) : base(nameof(ClipTextEmbeddings))
    {
        token_embedding = nn.Embedding(config.VocabSize, config.HiddenSize, device: device, dtype: dtype);
        position_embedding = nn.Embedding(config.MaxPositionEmbeddings, config.HiddenSize, device: device, dtype: dtype);
        position_ids = arange(config.MaxPositionEmbeddings, dtype: ScalarType.Int64, device: device).unsqueeze(0);
        RegisterComponents();
    }

    /// <param name="inputIds">[B, L] int64, L ≤ max_position_embeddings.</param>
    public override Tensor forward(Tensor inputIds)
    {
        using var scope = NewDisposeScope();
        var length = inputIds.shape[^1];
        if (length > position_ids.shape[1])
            throw new ArgumentException($"sequence length {length} exceeds max_position_embeddings {position_ids.shape[1]}");
        var positions = position_ids.narrow(1, 0, length);
        var e = token_embedding.forward(inputIds) + position_embedding.forward(positions);
        return e.MoveToOuterDisposeScope();
    }
}
