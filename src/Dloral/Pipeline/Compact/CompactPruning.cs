using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace Dloral.Pipeline.Compact;

/// <summary>
/// Makes a trained compact model's UNet smaller by removing whole parts, the inverse of <see cref="CompactGrowth"/>:
/// fewer resnets per block, or no mid block (diffusers' <c>mid_block_type: null</c>). Every kept weight is copied
/// unchanged, so the smaller network starts from what the larger one learned and is then trained on.
/// </summary>
/// <remarks>
/// Why: on the shipped network, removing the resnets that <see cref="CompactGrowth.Deepen"/> had added, and the mid
/// block with its attention, changed the held-out PSNR by −0.013 and 0.000 dB while cutting the UNet's time by a third
/// (models/README.md). The resnets removed are the ones deepening adds: the last ones of each down block and, in each up
/// block, those after the first, so <c>Prune(Deepen(m))</c> is <c>m</c> again.
/// </remarks>
public static partial class CompactPruning
{
    /// <summary>
    /// A new model with <paramref name="layersPerBlock"/> resnets per down block (one more per up block, as diffusers) and,
    /// when <paramref name="dropMidBlock"/>, no mid block. Throws if the model has fewer resnets than asked for (deepen it
    /// with <see cref="CompactGrowth.Deepen"/> instead) or blocks other than plain DownBlock2D/UpBlock2D.
    /// </summary>
    public static CompactDloral Prune(CompactDloral source, int? layersPerBlock, bool dropMidBlock)
    {
        ArgumentNullException.ThrowIfNull(source);
        var unet = source.Config.Unet;
        int n = unet.BlockOutChannels.Length;
        long[] oldLayers = unet.LayersPerBlock;
        int[] newLayers = oldLayers.Select(l => (int)l).ToArray();
        if (layersPerBlock is int target)
        {
            if (target < 1) throw new ArgumentOutOfRangeException(nameof(layersPerBlock), target, "at least one resnet per block");
            if (oldLayers.Any(l => l < target))
                throw new ArgumentException($"cannot prune to {target} resnets per block: the model has [{string.Join(", ", oldLayers)}] (deepen it instead)", nameof(layersPerBlock));
            newLayers = Enumerable.Repeat(target, n).ToArray();
        }
        CompactGrowth.RequirePlainBlocks(unet, "pruning");

        var pruned = CompactGrowth.BuildWithUnetConfig(source, unetJson =>
        {
            if (layersPerBlock is int l) unetJson["layers_per_block"] = l;
            if (dropMidBlock) unetJson["mid_block_type"] = null;
        }, "pruned compact model");
        try
        {
            var old = source.NamedWeights().ToDictionary(kv => kv.Key, kv => kv.Value);
            using var noGrad = no_grad();
            foreach (var (name, value) in pruned.NamedWeights())
            {
                string from = name;
                var m = ResnetName().Match(name);
                if (m.Success && m.Groups["dir"].Value == "up")
                {
                    // Up block j mirrors down block n−1−j; its first resnet stays, the next `removed` ones go.
                    int block = int.Parse(m.Groups["block"].Value), k = int.Parse(m.Groups["k"].Value);
                    int removed = (int)oldLayers[n - 1 - block] - newLayers[n - 1 - block];
                    if (k >= 1) from = $"unet.up_blocks.{block}.resnets.{k + removed}.{m.Groups["rest"].Value}";
                }
                CompactGrowth.CopyWeight(old, from, name, value, "pruning");
            }
            return pruned;
        }
        catch
        {
            pruned.Dispose();
            throw;
        }
    }

    [GeneratedRegex(@"^unet\.(?<dir>down|up)_blocks\.(?<block>\d+)\.resnets\.(?<k>\d+)\.(?<rest>.+)$")]
    private static partial Regex ResnetName();
}
