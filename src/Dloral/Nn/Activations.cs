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

    /// <summary>
    /// As <see cref="Get"/>, but overwriting its argument when no gradient is recorded (inference: the argument is a
    /// fresh temporary, e.g. a GroupNorm output, and one allocation and one pass over memory are saved). With gradients
    /// on it is the ordinary activation, since the backward pass needs the input.
    /// </summary>
    public static Func<Tensor, Tensor> GetOnTemporary(string name)
    {
        var plain = Get(name);
        Func<Tensor, Tensor>? inPlace = name switch
        {
            "silu" or "swish" => x => nn.functional.silu(x, inplace: true),
            "relu" => x => x.relu_(),
            _ => null,
        };
        if (inPlace is null) return plain;
        return x => is_grad_enabled() ? plain(x) : inPlace(x);
    }
}
