using static TorchSharp.torch;

namespace Dloral.Training;

/// <summary>
/// What happens once, when a from-scratch model's base stage ends and the DLoRAL stages begin on top of it (the base
/// becomes the frozen prior, as SD is for the reference):
/// <list type="number">
/// <item>With <c>ema_decay</c>, the base weights take their average — the weights that export ships — so the adapters
/// learn on the prior that ships, not on the last noisy step.</item>
/// <item>conv_in's previous-latent half is folded into its current-latent half (W_cur += W_prev, W_prev = 0), in its
/// LoRA down-projections too. For the base stage's [z ‖ z] input this is exact (single-frame output is unchanged), but
/// the consistency stage now starts from a network that ignores the previous latent instead of one that reads a
/// second copy of the current frame there: a misaligned neighbour in that slot blurred the output.</item>
/// </list>
/// The optimizer forgets the moments of every weight changed here.
/// </summary>
public static class BaseStageHandover
{
    /// <summary>W[:, c:2c] += W[:, 0:c]; W[:, 0:c] = 0 (in place) for a conv weight [out, 2c, kh, kw] over [previous ‖ current].</summary>
    public static void FoldPreviousIntoCurrent(Tensor weight, int latentChannels)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.dim() != 4 || weight.shape[1] != 2L * latentChannels)
            throw new ArgumentException($"expected a conv weight over 2×{latentChannels} input channels, got [{string.Join(",", weight.shape)}]", nameof(weight));
        using var noGrad = no_grad();
        using var previous = weight.narrow(1, 0, latentChannels);
        using var current = weight.narrow(1, latentChannels, latentChannels);
        current.add_(previous);
        previous.zero_();
    }

    /// <summary>The conv_in weights that read the [previous ‖ current] input: the base conv and its LoRA down-projections.</summary>
    public static IReadOnlyList<NamedParameter> ConvInInputWeights(TrainingModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        int c = model.Model.LatentChannels;
        return model.Checkpointed.Where(p => p.Name.StartsWith("unet.conv_in.", StringComparison.Ordinal) && p.Name.EndsWith(".weight", StringComparison.Ordinal)
            && p.Param.dim() == 4 && p.Param.shape[1] == 2L * c).ToList();
    }

    /// <summary>Applies the hand-over to the model, its weight average and its optimizer; returns what it did (for the log).</summary>
    /// <remarks><paramref name="foldConvIn"/> is false when the base stage already trained on the previous frame
    /// (<c>schedule.base_previous_frame</c>): conv_in's previous half then carries what the base learned from it and is kept.</remarks>
    public static string Apply(TrainingModel model, WeightAverage? average, AdamWOptimizer optimizer, bool foldConvIn = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        var baseWeights = model.TrainableIn(TrainingStage.Base);
        average?.CopyTo(baseWeights);
        int c = model.Model.LatentChannels;
        if (!foldConvIn)
        {
            optimizer.Forget(baseWeights.Select(p => p.Name));
            return (average is not null ? "base weights set to their average; " : "") + "conv_in kept (the base stage trained on the previous frame)";
        }
        var folded = ConvInInputWeights(model);
        foreach (var p in folded)
        {
            FoldPreviousIntoCurrent(p.Param, c);
            if (average is not null && average.Contains(p.Name)) FoldPreviousIntoCurrent(average[p.Name], c);
        }
        optimizer.Forget(baseWeights.Concat(folded).Select(p => p.Name));
        return (average is not null ? "base weights set to their average; " : "")
            + $"conv_in's previous-latent half folded into its current half ({folded.Count} weights): single-frame output unchanged, the previous latent starts unused";
    }
}
