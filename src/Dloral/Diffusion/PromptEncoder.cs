using static TorchSharp.torch;

namespace Dloral.Diffusion;

/// <summary>
/// Tokenizer + CLIP text encoder: a prompt to the [1, 77, D] embeddings Stable Diffusion
/// conditions on (last_hidden_state after the final LN, padding not masked).
/// </summary>
public sealed class PromptEncoder(ClipTokenizer tokenizer, ClipTextEncoder encoder) : IDisposable
{
    public ClipTokenizer Tokenizer { get; } = tokenizer;
    public ClipTextEncoder Encoder { get; } = encoder;

    /// <summary>Loads <c>tokenizer/</c> and <c>text_encoder/</c> of a diffusers model folder.</summary>
    public static PromptEncoder FromDiffusersFolder(string root, Device? device = null, ScalarType? dtype = null)
    {
        var tokenizer = ClipTokenizer.FromFolder(Path.Combine(root, "tokenizer"));
        var encoder = ClipTextEncoder.FromFolder(Path.Combine(root, "text_encoder"), device, dtype);
        return new PromptEncoder(tokenizer, encoder);
    }

    /// <summary>[1, 77, D] embeddings of one prompt, on the encoder's device and dtype.</summary>
    public Tensor Encode(string prompt) => Encode([prompt]);

    /// <summary>[B, 77, D] embeddings of several prompts.</summary>
    public Tensor Encode(IReadOnlyList<string> prompts)
    {
        using var scope = NewDisposeScope();
        // no_grad rather than inference_mode: the embeddings may feed a UNet that is being trained
        // (inference tensors cannot be saved for backward).
        using var mode = no_grad();
        var device = Encoder.parameters().First().device;
        var ids = Tokenizer.EncodeToTensor(prompts).to(device);
        return Encoder.forward(ids).MoveToOuterDisposeScope();
    }

    public void Dispose() => Encoder.Dispose();
}
