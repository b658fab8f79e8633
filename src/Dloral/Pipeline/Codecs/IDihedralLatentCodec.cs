using static TorchSharp.torch;

namespace Dloral.Pipeline.Codecs;

/// <summary>
/// A codec whose latents can be mirrored and rotated exactly: the latent of a flipped image is a known function of the
/// latent (a spatial flip plus, inside each block, a sign change or swap of frequency channels). Self-ensembles
/// (<see cref="SelfEnsemble"/>) need it: flipping the latent grid alone is not the latent of the flipped image.
/// </summary>
public interface IDihedralLatentCodec : ILatentCodec
{
    /// <summary>The scaled latent of the image transformed by <see cref="SelfEnsemble.Apply"/>(image, k), or with
    /// <paramref name="inverse"/> by <see cref="SelfEnsemble.Invert"/>; [n,C,h,w] → [n,C,h,w] (h and w swapped for k ≥ 4).</summary>
    Tensor Dihedral(Tensor latents, int k, bool inverse = false);
}
