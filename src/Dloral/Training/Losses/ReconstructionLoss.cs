using static TorchSharp.torch;

namespace Dloral.Training.Losses;

/// <summary>The reference's pixel loss: <c>F.mse_loss(pred.float(), target.float())</c> (mean over all elements).</summary>
public static class ReconstructionLoss
{
    /// <summary>Mean squared error in float32 (predictions may be bfloat16).</summary>
    public static Tensor L2(Tensor prediction, Tensor target)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        ArgumentNullException.ThrowIfNull(target);
        if (!prediction.shape.SequenceEqual(target.shape))
            throw new ArgumentException($"L2 loss: prediction [{string.Join(",", prediction.shape)}] and target [{string.Join(",", target.shape)}] differ");
        using var scope = NewDisposeScope();
        var p = prediction.to_type(ScalarType.Float32);
        var t = target.to_type(ScalarType.Float32).to(p.device);
        return nn.functional.mse_loss(p, t).MoveToOuterDisposeScope();
    }
}
