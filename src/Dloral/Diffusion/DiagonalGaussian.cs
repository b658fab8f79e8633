using static TorchSharp.torch;

namespace Dloral.Diffusion;

/// <summary>
/// diffusers <c>DiagonalGaussianDistribution</c> over the VAE latent: moments = mean ‖ logvar on channels;
/// logvar clamped to [−30, 20]; std = exp(½·logvar). Owns its tensors (dispose it).
/// </summary>
public sealed class DiagonalGaussian : IDisposable
{
    public Tensor Moments { get; }
    public Tensor Mean { get; }
    public Tensor LogVar { get; }
    public Tensor Std { get; }

    public DiagonalGaussian(Tensor moments)
    {
        using var scope = NewDisposeScope();
        var parts = moments.chunk(2, 1);
        Moments = moments.alias().MoveToOuterDisposeScope();
        Mean = parts[0].MoveToOuterDisposeScope();
        LogVar = parts[1].clamp(-30.0, 20.0).MoveToOuterDisposeScope();
        Std = (LogVar * 0.5).exp().MoveToOuterDisposeScope();
    }

    /// <summary>The deterministic latent (what DLoRAL's golden data and dloral use by default).</summary>
    public Tensor Mode() => Mean.alias();

    /// <summary>mean + std·ε with ε ~ N(0,1) drawn from <paramref name="generator"/> (seeded sampling).</summary>
    public Tensor Sample(Generator? generator = null)
    {
        using var scope = NewDisposeScope();
        var eps = randn(Mean.shape, dtype: Mean.dtype, device: Mean.device, generator: generator);
        return (Mean + Std * eps).MoveToOuterDisposeScope();
    }

    /// <summary>mean + std·<paramref name="eps"/> with caller-provided noise.</summary>
    public Tensor Sample(Tensor eps)
    {
        using var scope = NewDisposeScope();
        return (Mean + Std * eps).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        Moments.Dispose(); Mean.Dispose(); LogVar.Dispose(); Std.Dispose();
    }
}
