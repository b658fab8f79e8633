using static TorchSharp.torch;

namespace Dloral.Training.Losses;

/// <summary>The reference's pixel loss: <c>F.mse_loss(pred.float(), target.float())</c> (mean over all elements).</summary>
public static class ReconstructionLoss
{
    // ‖w‖² of the Rec.601 luma weights w: the error's component along the unit luma axis u = w/‖w‖ is gray(e)/‖w‖, the
    // Y that PSNR-Y measures is a multiple of it, and the plane orthogonal to u holds the chroma error.
    private static readonly double LumaWeightsNormSquared = Metrics.ColorSpace.Rec601LumaWeights.Sum(x => x * x);

    /// <summary>Mean squared error in float32 (predictions may be bfloat16).</summary>
    public static Tensor L2(Tensor prediction, Tensor target) => L2(prediction, target, 1.0);

    /// <summary>
    /// Mean squared error with the chroma part of the error weighted by <paramref name="chromaWeight"/>: the RGB error of
    /// each pixel is split into its component along the luma axis and the rest, and
    /// <c>(1/3)·mean(w·‖e‖² + (1 − w)·(e·u)²)</c> is returned. Weight 1 is exactly the plain MSE (the split is an
    /// orthogonal rotation); below 1 the network spends less of its capacity on colour detail, which a 4:2:0 video
    /// output halves anyway and PSNR-Y does not see. Images are [B, 3, H, W].
    /// </summary>
    public static Tensor L2(Tensor prediction, Tensor target, double chromaWeight)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        ArgumentNullException.ThrowIfNull(target);
        if (!prediction.shape.SequenceEqual(target.shape))
            throw new ArgumentException($"L2 loss: prediction [{string.Join(",", prediction.shape)}] and target [{string.Join(",", target.shape)}] differ");
        if (!double.IsFinite(chromaWeight) || chromaWeight < 0)
            throw new ArgumentOutOfRangeException(nameof(chromaWeight), chromaWeight, "L2 loss: the chroma weight must be a finite number ≥ 0");
        using var scope = NewDisposeScope();
        var p = prediction.to_type(ScalarType.Float32);
        var t = target.to_type(ScalarType.Float32).to(p.device);
        if (chromaWeight == 1.0) return nn.functional.mse_loss(p, t).MoveToOuterDisposeScope();
        if (p.dim() != 4 || p.shape[1] != 3)
            throw new ArgumentException($"L2 loss with a chroma weight needs RGB images [B,3,H,W], got [{string.Join(",", p.shape)}]");
        var e = p - t;
        var luma = Metrics.ColorSpace.RgbToGray(e);
        var loss = (e.square().mean() * chromaWeight) + (luma.square().mean() * ((1.0 - chromaWeight) / (3.0 * LumaWeightsNormSquared)));
        return loss.MoveToOuterDisposeScope();
    }
}
