using static TorchSharp.torch;

namespace Dloral.Pipeline.Codecs;

/// <summary>
/// The image ↔ latent map a <see cref="DloralModel"/> runs its UNet and CFR in: the SD VAE (<see cref="VaeLatentCodec"/>)
/// or a fixed, lossless rearrangement of pixels (<see cref="PixelUnshuffleCodec"/>).
/// </summary>
/// <remarks>
/// Scaling semantics (the SD convention): <see cref="Encode"/> returns the latent ALREADY multiplied by
/// <see cref="ScalingFactor"/> (what the UNet sees, and what the one step <c>z − ε̂</c> is computed on);
/// <see cref="Decode"/> takes such a scaled latent and divides by <see cref="ScalingFactor"/> itself. Neither clamps.
/// </remarks>
public interface ILatentCodec : IDisposable
{
    /// <summary>Pixels per latent position along each axis (8 for SD's VAE).</summary>
    int DownscaleFactor { get; }

    /// <summary>Channels of the latent (4 for SD; the DLoRAL UNet's conv_in takes twice this).</summary>
    int LatentChannels { get; }

    /// <summary>Factor applied after encoding and undone before decoding (0.18215 for SD).</summary>
    double ScalingFactor { get; }

    /// <summary>The dtype the codec computes in (inputs are cast to it).</summary>
    ScalarType DType { get; }

    /// <summary>Images [n,3,H,W] in [−1,1], H and W multiples of <see cref="DownscaleFactor"/> → scaled latents [n,C,H/f,W/f].</summary>
    Tensor Encode(Tensor images);

    /// <summary>Scaled latents [n,C,h,w] → images [n,3,h·f,w·f] (unclamped).</summary>
    Tensor Decode(Tensor latents);

    /// <summary>Puts trainable parts (if any) in eval mode.</summary>
    void Eval();
}
