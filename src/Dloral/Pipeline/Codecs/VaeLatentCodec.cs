using Dloral.Diffusion;
using static TorchSharp.torch;

namespace Dloral.Pipeline.Codecs;

/// <summary>
/// SD's VAE as a latent codec, exactly as DLoRAL uses it: encode = posterior mean · scaling_factor (deterministic, no
/// sampling), decode = VAE decode of latent / scaling_factor. Owns the VAE (Dispose disposes it).
/// </summary>
public sealed class VaeLatentCodec(AutoencoderKL vae) : ILatentCodec
{
    /// <summary>The wrapped VAE.</summary>
    public AutoencoderKL Vae { get; } = vae ?? throw new ArgumentNullException(nameof(vae));

    public int DownscaleFactor => Vae.DownscaleFactor;

    public int LatentChannels => (int)Vae.Config.LatentChannels;

    public double ScalingFactor => Vae.ScalingFactor;

    // Read each time: callers may move the VAE to another dtype after construction.
    public ScalarType DType => Vae.parameters().First().dtype;

    public Tensor Encode(Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        using var scope = NewDisposeScope();
        using var posterior = Vae.Encode(images.to(DType));
        return (posterior.Mean * ScalingFactor).MoveToOuterDisposeScope();
    }

    public Tensor Decode(Tensor latents)
    {
        ArgumentNullException.ThrowIfNull(latents);
        using var scope = NewDisposeScope();
        return Vae.Decode(latents.to(DType) / ScalingFactor).MoveToOuterDisposeScope();
    }

    public void Eval() => Vae.eval();

    public void Dispose() => Vae.Dispose();
}
