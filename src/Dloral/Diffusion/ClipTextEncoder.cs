using Dloral.Checkpoints;
using Dloral.Diffusion.Clip;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Diffusion;

#pragma warning disable IDE1006, CA1707 // field names are the PyTorch state_dict names

/// <summary>The outputs of <see cref="ClipTextEncoder.Encode"/>; disposing it disposes every tensor.</summary>
public sealed class ClipTextOutput(Tensor lastHiddenState, Tensor poolerOutput, IReadOnlyList<Tensor> hiddenStates) : IDisposable
{
    /// <summary>[B, L, D] after final_layer_norm: what Stable Diffusion feeds the UNet.</summary>
    public Tensor LastHiddenState { get; } = lastHiddenState;
    /// <summary>[B, D]: the last_hidden_state row at argmax(input_ids) (the first EOS).</summary>
    public Tensor PoolerOutput { get; } = poolerOutput;
    /// <summary>Embeddings, then each layer's output before the final LN (empty unless requested).</summary>
    public IReadOnlyList<Tensor> HiddenStates { get; } = hiddenStates;

    public void Dispose()
    {
        LastHiddenState.Dispose();
        PoolerOutput.Dispose();
        foreach (var h in HiddenStates)
            h.Dispose();
    }
}

/// <summary>
/// transformers' <c>CLIPTextModel</c> (4.28 layout: <c>text_model.embeddings.token_embedding</c>,
/// <c>position_embedding</c>, the <c>position_ids</c> buffer, <c>encoder.layers.N.self_attn.{q,k,v,out}_proj</c>,
/// <c>layer_norm1/2</c>, <c>mlp.fc1/fc2</c>, <c>final_layer_norm</c>), built from its config.json.
/// Only a causal mask is applied: padding is not masked, as in Stable Diffusion.
/// </summary>
public sealed class ClipTextEncoder : nn.Module<Tensor, Tensor>
{
    private readonly ClipTextTransformer text_model;

    public ClipTextConfig Config { get; }

    public ClipTextEncoder(ClipTextConfig config, Device? device = null, ScalarType? dtype = null) : base(nameof(ClipTextEncoder))
    {
        config.Validate("ClipTextConfig");
        Config = config;
        text_model = new ClipTextTransformer(config, device, dtype);
        RegisterComponents();
    }

    /// <summary>last_hidden_state [B, L, D] for int64 ids [B, L].</summary>
    public override Tensor forward(Tensor inputIds) => text_model.forward(CheckIds(inputIds));

    /// <summary>last_hidden_state, pooler_output and optionally every hidden state.</summary>
    public ClipTextOutput Encode(Tensor inputIds, bool outputHiddenStates = false)
    {
        using var scope = NewDisposeScope();
        var hidden = outputHiddenStates ? new List<Tensor>() : null;
        var ids = CheckIds(inputIds);
        var last = text_model.Forward(ids, hidden);
        // Pooler: the row at argmax(input_ids), i.e. the first EOS (it has the largest id).
        var b = last.shape[0];
        var d = last.shape[2];
        var at = ids.argmax(-1).view(b, 1, 1).expand(b, 1, d);
        var pooled = last.gather(1, at).squeeze(1);
        return new ClipTextOutput(last.DetachFromDisposeScope(), pooled.DetachFromDisposeScope(), hidden ?? []);
    }

    private Tensor CheckIds(Tensor inputIds)
    {
        if (inputIds.dim() != 2)
            throw new ArgumentException($"input_ids must be [batch, length], got [{string.Join(",", inputIds.shape)}]");
        if (inputIds.dtype != ScalarType.Int64)
            throw new ArgumentException($"input_ids must be int64, got {inputIds.dtype}");
        return inputIds;
    }

    /// <summary>Loads weights by name, strictly (missing, unexpected and mis-shaped keys listed in one
    /// error). <c>position_ids</c> may be absent (newer transformers stop saving it).</summary>
    public void LoadWeights(IWeightSource source) =>
        StateDictLoader.Load(this, source, optional: ["text_model.embeddings.position_ids"]);

    /// <summary>
    /// Builds the encoder from a diffusers <c>text_encoder/</c> folder: config.json plus
    /// model.safetensors (or model.fp16.safetensors, or a sharded index), or — read with the safe
    /// unpickler — pytorch_model.bin. Parameters are allocated once on <paramref name="device"/> in
    /// <paramref name="dtype"/> (default float32) and filled in place, converting fp16/bf16 on the fly.
    /// </summary>
    public static ClipTextEncoder FromFolder(string folder, Device? device = null, ScalarType? dtype = null)
    {
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"text encoder folder not found: {folder}");
        var config = ClipTextConfig.FromFile(Path.Combine(folder, "config.json"));
        var model = new ClipTextEncoder(config, device, dtype ?? ScalarType.Float32);
        try
        {
            var bin = Path.Combine(folder, "pytorch_model.bin");
            var hasSafetensors = Directory.EnumerateFiles(folder, "model*.safetensors*").Any();
            if (!hasSafetensors && File.Exists(bin))
            {
                // Lazy: each tensor streams from the zip straight into its parameter.
                using var checkpoint = TorchCheckpoint.Load(bin, lazy: true);
                model.LoadWeights(TorchCheckpoint.AsWeightSource(checkpoint.Root, "pytorch_model.bin", bin));
            }
            else
            {
                using var weights = SafeTensorsWeightSource.OpenInFolder(folder, "model");
                model.LoadWeights(weights);
            }
        }
        catch
        {
            model.Dispose();
            throw;
        }
        model.eval();
        return model;
    }
}
