using static TorchSharp.torch;

namespace Dloral.Nn;

/// <summary>
/// Where and in which dtype a model's parameters are created. Layers are allocated directly on
/// <see cref="Device"/> in <see cref="DType"/>, so a full-size model never exists twice in memory;
/// the <c>meta</c> device builds the architecture without allocating any storage.
/// </summary>
public sealed record ModelOptions(Device? Device = null, ScalarType DType = ScalarType.Float32)
{
    public static ModelOptions Default { get; } = new();

    /// <summary>Builds on the meta device: names and shapes only, no memory.</summary>
    public static ModelOptions Meta { get; } = new(TorchSharp.torch.device("meta"));

    internal nn.Module<Tensor, Tensor> Linear(long inFeatures, long outFeatures, bool bias = true) =>
        nn.Linear(inFeatures, outFeatures, bias, Device, DType);

    internal nn.Module<Tensor, Tensor> Conv2d(long inChannels, long outChannels, long kernel, long stride = 1, long padding = 0, bool bias = true) =>
        nn.Conv2d(inChannels, outChannels, kernel, stride, padding, bias: bias, device: Device, dtype: DType);

    internal GroupNorm GroupNorm(long groups, long channels, double eps) => new(groups, channels, eps, Device, DType);

    internal TorchSharp.Modules.LayerNorm LayerNorm(long dim, double eps, bool affine = true) =>
        nn.LayerNorm(dim, eps, elementwise_affine: affine, bias: true, device: Device, dtype: DType);
}
