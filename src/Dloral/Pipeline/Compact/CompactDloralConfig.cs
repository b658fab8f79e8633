using System.Text.Json;
using Dloral.Diffusion;
using Dloral.Temporal;

namespace Dloral.Pipeline.Compact;

/// <summary>
/// Everything that defines the compact DLoRAL network besides its weights: the UNet's diffusers config.json, the
/// pixel-unshuffle codec, the CFR size, the LoRA ranks, the learned "empty prompt" size, the SR scale and the init seed.
/// Kept with the raw JSON texts so a weights file can carry them verbatim in its <c>__metadata__</c>.
/// </summary>
public sealed record CompactDloralConfig
{
    /// <summary>The format tag of compact.json and of the weights' metadata.</summary>
    public const string Format = "dloral-compact/1";

    public required string CompactJson { get; init; }
    public required string UnetJson { get; init; }
    public required UNet2DConditionConfig Unet { get; init; }
    public int Scale { get; init; } = 4;
    public long Seed { get; init; }
    public int CodecFactor { get; init; } = 8;
    public bool CodecMixing { get; init; } = true;
    public double? CodecScaling { get; init; }
    public required CrossFrameRetrievalConfig Cfr { get; init; }
    public int RankQuality { get; init; } = 8;
    public int RankConsistency { get; init; } = 8;
    public double LoraAlpha { get; init; } = 8.0;
    public int PromptTokens { get; init; } = 1;
    public int PromptWidth { get; init; } = 64;

    /// <summary>"previous": "output" — the previous latent of a window is the previous restored frame (<see cref="DloralModel.RecurrentPrevious"/>).</summary>
    public bool RecurrentPrevious { get; init; }

    /// <summary>Reads <c>compact.json</c> and <c>unet_config.json</c> from a folder (e.g. models/compact).</summary>
    public static CompactDloralConfig LoadFolder(string folder)
    {
        string compact = Path.Combine(folder, "compact.json"), unet = Path.Combine(folder, "unet_config.json");
        if (!File.Exists(compact)) throw new FileNotFoundException($"compact model config not found: {compact}", compact);
        if (!File.Exists(unet)) throw new FileNotFoundException($"compact UNet config not found: {unet}", unet);
        return Parse(File.ReadAllText(compact), File.ReadAllText(unet), folder);
    }

    /// <summary>Parses the two JSON texts (<paramref name="source"/> names them in errors).</summary>
    public static CompactDloralConfig Parse(string compactJson, string unetJson, string source)
    {
        using var doc = JsonDocument.Parse(compactJson);
        using var udoc = JsonDocument.Parse(unetJson);
        var r = doc.RootElement;
        string format = r.TryGetProperty("format", out var fm) ? fm.GetString() ?? "" : "";
        if (format != Format) throw new InvalidDataException($"{source}: compact.json format '{format}', expected '{Format}'");
        var unet = UNet2DConditionConfig.FromJson(udoc.RootElement, $"{source}/unet_config.json");
        var codec = Member(r, "codec", source);
        string type = codec.GetProperty("type").GetString() ?? "";
        if (type != "pixel_unshuffle") throw new InvalidDataException($"{source}: codec type '{type}' is not supported (pixel_unshuffle)");
        int factor = codec.GetProperty("factor").GetInt32();
        var cfr = Member(r, "cfr", source);
        var lora = Member(r, "lora", source);
        var prompt = Member(r, "prompt", source);
        int c = 3 * factor * factor;
        string flowName = cfr.TryGetProperty("flow", out var fl) ? fl.GetString() ?? "" : "spynet";
        var flow = CrossFrameFlowNames.Parse(flowName)
                   ?? throw new InvalidDataException($"{source}: cfr.flow '{flowName}' is not supported (spynet, lucas_kanade)");
        string warp = cfr.TryGetProperty("warp", out var wp) ? wp.GetString() ?? "" : "latents";
        if (warp is not ("latents" or "frames")) throw new InvalidDataException($"{source}: cfr.warp '{warp}' is not supported (latents, frames)");
        string previous = r.TryGetProperty("previous", out var pv) ? pv.GetString() ?? "" : "input";
        if (previous is not ("input" or "output")) throw new InvalidDataException($"{source}: previous '{previous}' is not supported (input, output)");
        if (unet.InChannels != c || unet.OutChannels != c)
            throw new InvalidDataException($"{source}: unet_config.json in/out_channels {unet.InChannels}/{unet.OutChannels} must equal the codec's {c} latent channels (3·{factor}²)");
        if (unet.CrossAttentionDim.Any(d => d != prompt.GetProperty("width").GetInt32()))
            throw new InvalidDataException($"{source}: unet cross_attention_dim must equal the prompt width {prompt.GetProperty("width").GetInt32()}");
        return new CompactDloralConfig
        {
            CompactJson = compactJson,
            UnetJson = unetJson,
            Unet = unet,
            Scale = r.GetProperty("scale").GetInt32(),
            Seed = r.GetProperty("seed").GetInt64(),
            CodecFactor = factor,
            CodecMixing = codec.TryGetProperty("orthonormal_mixing", out var m) && m.GetBoolean(),
            CodecScaling = codec.TryGetProperty("scaling_factor", out var s) ? s.GetDouble() : null,
            Cfr = new CrossFrameRetrievalConfig(c, factor, cfr.GetProperty("embed_dim").GetInt32(), cfr.GetProperty("heads").GetInt32(),
                                                cfr.GetProperty("flow_downscale").GetInt32(), cfr.GetProperty("attention_pool").GetInt32(), flow,
                                                warp == "frames"),
            RecurrentPrevious = previous == "output",
            RankQuality = lora.GetProperty("rank_quality").GetInt32(),
            RankConsistency = lora.GetProperty("rank_consistency").GetInt32(),
            LoraAlpha = lora.GetProperty("alpha").GetDouble(),
            PromptTokens = prompt.GetProperty("tokens").GetInt32(),
            PromptWidth = prompt.GetProperty("width").GetInt32(),
        };
    }

    private static JsonElement Member(JsonElement root, string name, string source) =>
        root.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.Object
            ? e : throw new InvalidDataException($"{source}: compact.json lacks the '{name}' object");
}
