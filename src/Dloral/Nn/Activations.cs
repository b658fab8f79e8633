using static TorchSharp.torch;

namespace Dloral.Nn;

/// <summary>Activation functions by their diffusers / transformers config name (<c>act_fn</c>).</summary>
public static class Activations
{
    /// <summary>Returns the activation for <paramref name="name"/>; an unknown name is a clear error.</summary>
    public static Func<Tensor, Tensor> Get(string name) => name switch
    {
        "silu" or "swish" => x => nn.functional.silu(x),
        "gelu" => x => nn.functional.gelu(x),
        "mish" => x => nn.functional.mish(x),
        "relu" => x => nn.functional.relu(x),
        _ => throw new NotSupportedException($"activation '{name}' is not supported (supported: silu, swish, gelu, mish, relu)"),
    };
}
