using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Dloral.Nn;
using static TorchSharp.torch;

namespace Dloral.Pipeline.Compact;

/// <summary>
/// Widens a trained compact model (more channels per UNet level) so that a wider base network continues from a trained
/// one (net2net "wider": every new channel is a copy of an old one, and the layers that read it share the old weight
/// between the copies).
/// <para>Channel j of a level widened from c to c′ copies old channel ⌊j·c/c′⌋: producers (conv/linear rows, biases,
/// norm scales and shifts, LoRA B) repeat rows, consumers (conv/linear columns, LoRA A) split each old column over its
/// copies at random (the parts sum to the old weight, so the copies then learn apart). The copies of a channel stay equal
/// through every layer, so everything but GroupNorm computes what it did. GroupNorm's groups then hold each old group's
/// channels with some of them repeated, which moves the statistics; training takes it from there. (With every norm
/// per channel the widened model is exact: tested.) The up blocks' inputs are concatenations [hidden ‖ skip], mapped
/// part by part. The timestep embedding's sinusoid has c₀ channels: <c>time_embedding_dim</c> keeps the embedding's
/// width, and linear_1 is folded into its bias at the model's one timestep (a one-step model never uses another).</para>
/// </summary>
public static partial class CompactWidening
{
    /// <summary>
    /// A new model with UNet <c>block_out_channels</c> = <paramref name="blockOutChannels"/> (each at least the old width,
    /// same number of levels; the lowest level, which holds the mid block's attention, keeps its width), computing the
    /// source's output up to GroupNorm's statistics (see the class remarks). <paramref name="seed"/> draws how each weight
    /// that reads a copied channel is split between the copies. The source is left unchanged. Float32, on the source's device.
    /// </summary>
    public static CompactDloral Widen(CompactDloral source, IReadOnlyList<long> blockOutChannels, long seed = 0, long timestep = DloralModel.ReferenceTimestep)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(blockOutChannels);
        var unet = source.Config.Unet;
        long[] oldCh = unet.BlockOutChannels, newCh = blockOutChannels.ToArray();
        int n = oldCh.Length;
        if (newCh.Length != n)
            throw new ArgumentException($"block_out_channels [{string.Join(", ", newCh)}] has {newCh.Length} levels; the model has {n}: [{string.Join(", ", oldCh)}]", nameof(blockOutChannels));
        for (int i = 0; i < n; i++)
        {
            if (newCh[i] < oldCh[i])
                throw new ArgumentException($"cannot narrow level {i} from {oldCh[i]} to {newCh[i]} channels: widening only adds channels", nameof(blockOutChannels));
            if (newCh[i] % unet.NormNumGroups != 0)
                throw new ArgumentException($"level {i}: {newCh[i]} channels do not split into {unet.NormNumGroups} GroupNorm groups", nameof(blockOutChannels));
        }
        for (int i = 1; i < n; i++)
            if ((oldCh[i - 1] == oldCh[i]) != (newCh[i - 1] == newCh[i]))
                throw new NotSupportedException($"levels {i - 1} and {i}: [{oldCh[i - 1]}, {oldCh[i]}] → [{newCh[i - 1]}, {newCh[i]}] would add or drop the 1×1 conv_shortcut of down block {i}'s first resnet (diffusers has one only where the width changes); keep the widths of neighbouring levels equal or different as they were");
        if (newCh[^1] != oldCh[^1])
            throw new NotSupportedException($"the lowest level ({oldCh[^1]} channels) holds the mid block's attention, whose heads widening does not map; keep its width");
        CompactGrowth.RequirePlainBlocks(unet, "widening");

        long timeEmbedDim = unet.TimeEmbeddingDim ?? oldCh[0] * 4;
        var wide = CompactGrowth.BuildWithUnetConfig(source, unetJson =>
        {
            unetJson["block_out_channels"] = new JsonArray(newCh.Select(c => (JsonNode)JsonValue.Create(c)).ToArray());
            unetJson["time_embedding_dim"] = timeEmbedDim;
        }, "widened compact model");
        var device = source.PromptEmbeds.device;
        try
        {
            var old = source.NamedWeights().ToDictionary(kv => kv.Key, kv => kv.Value);
            using var noGrad = no_grad();
            using var generator = new Generator((ulong)seed);
            foreach (var (name, target) in wide.NamedWeights())
            {
                if (!old.TryGetValue(name, out var value))
                    throw new InvalidOperationException($"widening: no source weight {name}");
                using var scope = NewDisposeScope();
                var w = value.detach().to_type(ScalarType.Float32).contiguous();
                if (name == "unet.time_embedding.linear_1.weight" && w.shape[1] != target.shape[1])
                {
                    target.zero_();
                    continue;
                }
                if (name == "unet.time_embedding.linear_1.bias" && oldCh[0] != newCh[0])
                {
                    // The sinusoid changes with c₀: fold linear_1 at the model's timestep into the bias.
                    using var proj = new Timesteps(oldCh[0], unet.FlipSinToCos, unet.FreqShift);
                    var s = proj.call(tensor(new[] { timestep }, ScalarType.Int64, device)).to_type(ScalarType.Float32);
                    var w1 = old["unet.time_embedding.linear_1.weight"].detach().to_type(ScalarType.Float32);
                    target.copy_(w + s.matmul(w1.t()).squeeze(0));
                    continue;
                }
                for (int dim = 0; dim < Math.Min(2, w.dim()); dim++)
                {
                    long from = w.shape[dim], to = target.shape[dim];
                    if (from == to) continue;
                    bool consumer = dim == 1; // [out, in, …]: rows produce a channel, columns read one
                    var index = tensor(ChannelMap(name, dim, from, to, oldCh, newCh, unet.LayersPerBlock), ScalarType.Int64, device);
                    w = w.index_select(dim, index);
                    if (consumer)
                    {
                        // Split each old weight over its copies at random (the parts sum to it): equal parts would give
                        // the copies equal gradients forever, and the new channels would never learn anything new.
                        var part = rand(w.shape, generator: generator).to(device).add_(0.5);
                        var total = zeros([w.shape[0], from, .. w.shape.Skip(2)], device: device).index_add_(1, index, part, 1);
                        w = w * part / total.index_select(1, index);
                    }
                }
                if (!w.shape.SequenceEqual(target.shape))
                    throw new InvalidOperationException($"widening: {name} [{string.Join(",", value.shape)}] does not map onto [{string.Join(",", target.shape)}]");
                target.copy_(w);
            }
            return wide;
        }
        catch
        {
            wide.Dispose();
            throw;
        }
    }

    /// <summary>For each of c′ new channels, the old channel (of c) it copies: ⌊j·c/c′⌋, so each new GroupNorm group holds
    /// one old group's channels.</summary>
    private static long[] Proportional(long from, long to)
    {
        var index = new long[to];
        for (long j = 0; j < to; j++) index[j] = j * from / to;
        return index;
    }

    /// <summary>
    /// For each new channel of one dimension of one weight, the old channel it copies. Up-block resnets read [hidden ‖ skip] (diffusers UpBlock2D: the first
    /// resnet's hidden comes from the level below, the last one's skip from the level above), mapped part by part.
    /// </summary>
    private static long[] ChannelMap(string name, int dim, long from, long to, long[] oldCh, long[] newCh, long[] layersPerBlock)
    {
        var m = UpResnetInput().Match(name);
        bool readsConcat = m.Success && (dim == 1 || m.Groups["norm"].Success);
        if (!readsConcat) return Proportional(from, to);
        int n = oldCh.Length, block = int.Parse(m.Groups["block"].Value), k = int.Parse(m.Groups["k"].Value);
        int resnets = (int)layersPerBlock[n - 1 - block] + 1;
        (long hidden, long skip) Parts(long[] ch)
        {
            var r = ch.Reverse().ToArray();
            long prevOut = block == 0 ? r[0] : r[block - 1], outCh = r[block], inCh = r[Math.Min(block + 1, n - 1)];
            return (k == 0 ? prevOut : outCh, k == resnets - 1 ? inCh : outCh);
        }
        var (h0, s0) = Parts(oldCh);
        var (h1, s1) = Parts(newCh);
        if (h0 + s0 != from || h1 + s1 != to)
            throw new InvalidOperationException($"widening: {name} reads {from} → {to} channels, expected [{h0} ‖ {s0}] → [{h1} ‖ {s1}]");
        return [.. Proportional(h0, h1), .. Proportional(s0, s1).Select(i => i + h0)];
    }

    [GeneratedRegex(@"^unet\.up_blocks\.(?<block>\d+)\.resnets\.(?<k>\d+)\.((?<norm>norm1)\.(weight|bias)|(conv1|conv_shortcut)\.(base_layer|lora_A\.[^.]+)\.weight)$")]
    private static partial Regex UpResnetInput();
}
