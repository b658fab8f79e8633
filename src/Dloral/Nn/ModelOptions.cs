using static TorchSharp.torch;

namespace Dloral.Nn;

/// <summary>
/// Where and in which dtype a model's parameters are created. Layers are allocated directly on
/// <see cref="Device"/> in <see cref="DType"/>, so a full-size model never exists twice in memory;
/// the <c>meta</c> device builds the architecture without allocating any storage. CUDA works when the application
/// references a CUDA build of libtorch (e.g. the libtorch-cuda package) instead of libtorch-cpu; it is not tested here.
/// </summary>
public sealed record ModelOptions(Device? Device = null, ScalarType DType = ScalarType.Float32)
{
    public static ModelOptions Default { get; } = new();

    /// <summary>Builds on the meta device: names and shapes only, no memory.</summary>
    public static ModelOptions Meta { get; } = new(TorchSharp.torch.device("meta"));

    /// <summary>
    /// Skip the random initialisation of Linear/Conv2d weights (they are allocated uninitialised): for models whose
    /// every weight is loaded right after construction (a strict load). Saves seconds on a full-size UNet.
    /// </summary>
    public bool Uninitialized { get; init; }

    /// <summary>
    /// Keep conv weights and feature maps channels-last (NHWC strides) — faster CPU convolutions. Results equal the
    /// NCHW ones up to float rounding; inputs and outputs keep their logical NCHW shape.
    /// </summary>
    public bool ChannelsLast { get; init; }

    private static readonly Device MetaDevice = TorchSharp.torch.device("meta");

    internal nn.Module<Tensor, Tensor> Linear(long inFeatures, long outFeatures, bool bias = true)
    {
        if (!Uninitialized) return nn.Linear(inFeatures, outFeatures, bias, Device, DType);
        var layer = nn.Linear(inFeatures, outFeatures, bias, MetaDevice, DType);
        layer.weight = new TorchSharp.Modules.Parameter(empty([outFeatures, inFeatures], DType, Device));
        if (bias) layer.bias = new TorchSharp.Modules.Parameter(empty([outFeatures], DType, Device));
        return layer;
    }

    internal nn.Module<Tensor, Tensor> Conv2d(long inChannels, long outChannels, long kernel, long stride = 1, long padding = 0, bool bias = true)
    {
        if (!Uninitialized && !ChannelsLast) return nn.Conv2d(inChannels, outChannels, kernel, stride, padding, bias: bias, device: Device, dtype: DType);
        // Allocate the weight directly in its final layout (a later re-layout would leave the old copy to the allocator).
        var layer = nn.Conv2d(inChannels, outChannels, kernel, stride, padding, bias: bias, device: MetaDevice, dtype: DType);
        var weight = ChannelsLast
            ? empty([outChannels, kernel, kernel, inChannels], DType, Device).permute(0, 3, 1, 2)
            : empty([outChannels, inChannels, kernel, kernel], DType, Device);
        var biasTensor = bias ? empty([outChannels], DType, Device) : null;
        if (!Uninitialized)
        {
            using var guard = no_grad();
            // torch.nn.Conv2d's default init: kaiming_uniform(a=√5) weight, U(±1/√fan_in) bias.
            nn.init.kaiming_uniform_(weight, Math.Sqrt(5), nn.init.FanInOut.FanIn, nn.init.NonlinearityType.LeakyReLU);
            double bound = 1 / Math.Sqrt(inChannels * kernel * kernel);
            biasTensor?.uniform_(-bound, bound);
        }
        layer.weight = new TorchSharp.Modules.Parameter(weight);
        if (biasTensor is not null) layer.bias = new TorchSharp.Modules.Parameter(biasTensor);
        return layer;
    }

    internal GroupNorm GroupNorm(long groups, long channels, double eps) => new(groups, channels, eps, Device, DType);

    internal TorchSharp.Modules.LayerNorm LayerNorm(long dim, double eps, bool affine = true) =>
        nn.LayerNorm(dim, eps, elementwise_affine: affine, bias: true, device: Device, dtype: DType);
}
