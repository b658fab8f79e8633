using static TorchSharp.torch;

namespace Dloral.Training.Losses;

/// <summary>A differentiable perceptual distance between predictions and targets [n,3,H,W] in [−1,1] (mean over the batch).</summary>
public interface IPerceptualLoss : IDisposable
{
    /// <summary>The loss; gradients flow to <paramref name="prediction"/> only (the network is frozen).</summary>
    Tensor Compute(Tensor prediction, Tensor target);
}
