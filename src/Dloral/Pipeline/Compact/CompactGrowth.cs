using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Dloral.Diffusion;
using Dloral.Nn;
using static TorchSharp.torch;

namespace Dloral.Pipeline.Compact;

/// <summary>
/// Deepens a trained compact model (more resnets per UNet block) without changing what it computes, so a larger base
/// network continues from a trained one instead of training from scratch (net2net-style growth).
/// <para>New down-block resnets are appended with conv2 zero: <c>x + 0</c> is the identity, and the skip they add equals
/// the one before them. Each up block consumes its level's skips in reverse, so the up block's first resnet keeps its
/// old weights (it now reads the newest, identical skip), the new resnets follow it as identities that ignore their skip
/// (conv_shortcut = [I | 0], conv2 zero), and the old remaining resnets come last with their old skips. Adapters of new
/// layers start with B = 0, as fresh adapters do. Everything else is copied by name.</para>
/// </summary>
public static partial class CompactGrowth
{
    /// <summary>
    /// A new model with <paramref name="layersPerBlock"/> resnets in every down block (up blocks get one more, as diffusers
    /// builds them) and the same output as <paramref name="source"/>; the source is left unchanged. Float32, on the
    /// source's device.
    /// </summary>
    public static CompactDloral Deepen(CompactDloral source, int layersPerBlock)
    {
        ArgumentNullException.ThrowIfNull(source);
        var unet = source.Config.Unet;
        int n = unet.BlockOutChannels.Length;
        if (layersPerBlock < 1) throw new ArgumentOutOfRangeException(nameof(layersPerBlock), layersPerBlock, "at least one resnet per block");
        long[] oldLayers = unet.LayersPerBlock;
        if (oldLayers.Any(l => l > layersPerBlock))
            throw new ArgumentException($"cannot deepen to {layersPerBlock} resnets per block: the model already has [{string.Join(", ", oldLayers)}]", nameof(layersPerBlock));
        RequirePlainBlocks(unet, "deepening");

        var grown = BuildWithUnetConfig(source, unetJson => unetJson["layers_per_block"] = layersPerBlock, "deepened compact model");
        try
        {
            var old = source.NamedWeights().ToDictionary(kv => kv.Key, kv => kv.Value);
            using var noGrad = no_grad();
            foreach (var (name, target) in grown.NamedWeights())
            {
                var m = ResnetName().Match(name);
                string? from = name;
                bool identity = false;
                if (m.Success)
                {
                    int block = int.Parse(m.Groups["block"].Value), k = int.Parse(m.Groups["k"].Value);
                    string rest = m.Groups["rest"].Value;
                    if (m.Groups["dir"].Value == "down")
                        identity = k >= oldLayers[block];
                    else
                    {
                        // Up block j mirrors down block n−1−j; it gained as many resnets as that down block.
                        int added = layersPerBlock - (int)oldLayers[n - 1 - block];
                        identity = k >= 1 && k <= added;
                        if (!identity) from = $"unet.up_blocks.{block}.resnets.{(k == 0 ? 0 : k - added)}.{rest}";
                    }
                    if (identity)
                    {
                        InitialiseIdentity(rest, target);
                        continue;
                    }
                }
                CopyWeight(old, from, name, target, "deepening");
            }
            return grown;
        }
        catch
        {
            grown.Dispose();
            throw;
        }
    }

    /// <summary>Copies the source weight <paramref name="from"/> into <paramref name="target"/> (named <paramref name="name"/>
    /// in the new model), refusing a missing or differently shaped source; <paramref name="what"/> names the operation.</summary>
    internal static void CopyWeight(IReadOnlyDictionary<string, Tensor> old, string from, string name, Tensor target, string what)
    {
        if (!old.TryGetValue(from, out var value))
            throw new InvalidOperationException($"{what}: no source weight {from} for {name}");
        if (!value.shape.SequenceEqual(target.shape))
            throw new InvalidOperationException($"{what}: {from} [{string.Join(",", value.shape)}] does not fit {name} [{string.Join(",", target.shape)}]");
        target.copy_(value.to_type(target.dtype));
    }

    /// <summary>Growth maps resnets and channels of plain blocks only; attention blocks are refused.</summary>
    internal static void RequirePlainBlocks(UNet2DConditionConfig unet, string what)
    {
        var attention = unet.DownBlockTypes.Concat(unet.UpBlockTypes).FirstOrDefault(t => t != "DownBlock2D" && t != "UpBlock2D");
        if (attention is not null)
            throw new NotSupportedException($"{what} supports plain DownBlock2D/UpBlock2D blocks only, not {attention}");
    }

    /// <summary>A fresh float32 model on the source's device, with the source's UNet config as <paramref name="edit"/> changes it.</summary>
    internal static CompactDloral BuildWithUnetConfig(CompactDloral source, Action<JsonObject> edit, string description)
    {
        var unetJson = JsonNode.Parse(source.Config.UnetJson)!.AsObject();
        edit(unetJson);
        var config = CompactDloralConfig.Parse(source.Config.CompactJson, unetJson.ToJsonString(new() { WriteIndented = true }), description);
        return CompactDloral.Build(config, new ModelOptions(source.PromptEmbeds.device, ScalarType.Float32));
    }

    /// <summary>A new resnet's weights: fresh (seeded) except conv2 = 0 and, where channels change, conv_shortcut = [I | 0].</summary>
    private static void InitialiseIdentity(string rest, Tensor target)
    {
        using var scope = NewDisposeScope();
        switch (rest)
        {
            case "conv2.base_layer.weight" or "conv2.base_layer.bias" or "conv_shortcut.base_layer.bias":
                target.zero_();
                break;
            case "conv_shortcut.base_layer.weight":
                // [out, out + skip, 1, 1]: pass the hidden state (concatenated first) through, drop the skip.
                target.zero_();
                long outChannels = target.shape[0];
                target.narrow(1, 0, outChannels).squeeze(-1).squeeze(-1).copy_(eye(outChannels, dtype: target.dtype, device: target.device));
                break;
        }
    }

    [GeneratedRegex(@"^unet\.(?<dir>down|up)_blocks\.(?<block>\d+)\.resnets\.(?<k>\d+)\.(?<rest>.+)$")]
    private static partial Regex ResnetName();
}
