using System.Text.Json;

namespace Dloral.Diffusion;

/// <summary>
/// The architecture part of a diffusers <c>UNet2DConditionModel</c> config.json, with the v0.25 defaults filled in.
/// Options this port does not implement are rejected at parse time with the key named, never silently ignored.
/// </summary>
public sealed record UNet2DConditionConfig
{
    public long InChannels { get; init; } = 4;
    public long OutChannels { get; init; } = 4;
    public bool CenterInputSample { get; init; }
    public bool FlipSinToCos { get; init; } = true;
    public double FreqShift { get; init; }
    public string[] DownBlockTypes { get; init; } = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"];
    public string? MidBlockType { get; init; } = "UNetMidBlock2DCrossAttn";
    public string[] UpBlockTypes { get; init; } = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"];
    public long[] BlockOutChannels { get; init; } = [320, 640, 1280, 1280];
    public long[] LayersPerBlock { get; init; } = [2, 2, 2, 2];
    public long DownsamplePadding { get; init; } = 1;
    public double MidBlockScaleFactor { get; init; } = 1;
    public string ActFn { get; init; } = "silu";
    public int NormNumGroups { get; init; } = 32;
    public double NormEps { get; init; } = 1e-5;
    public long[] CrossAttentionDim { get; init; } = [1280, 1280, 1280, 1280];
    public long[] TransformerLayersPerBlock { get; init; } = [1, 1, 1, 1];
    /// <summary>
    /// Heads per block. diffusers 0.25: <c>num_attention_heads = num_attention_heads or attention_head_dim</c>, so SD 2.x's
    /// <c>attention_head_dim [5,10,20,20]</c> is the head COUNT and each head is channels/heads (= 64) wide.
    /// </summary>
    public long[] NumAttentionHeads { get; init; } = [8, 8, 8, 8];
    public bool UseLinearProjection { get; init; }
    public long ConvInKernel { get; init; } = 3;
    public long ConvOutKernel { get; init; } = 3;
    public long? TimeEmbeddingDim { get; init; }

    internal static readonly string[] SupportedDownBlocks = ["CrossAttnDownBlock2D", "DownBlock2D"];
    internal static readonly string[] SupportedUpBlocks = ["CrossAttnUpBlock2D", "UpBlock2D"];
    internal static readonly string[] SupportedMidBlocks = ["UNetMidBlock2DCrossAttn"];

    /// <summary>Reads a config.json (a plain diffusers file, or a file whose "config" member holds one).</summary>
    public static UNet2DConditionConfig Load(string path)
    {
        var c = ConfigJson.Load(path);
        return Parse(c);
    }

    public static UNet2DConditionConfig FromJson(JsonElement root, string source = "<json>") => Parse(new ConfigJson(root, source));

    private static UNet2DConditionConfig Parse(ConfigJson c)
    {
        var down = c.Strings("down_block_types", new UNet2DConditionConfig().DownBlockTypes);
        var up = c.Strings("up_block_types", new UNet2DConditionConfig().UpBlockTypes);
        // null: no mid block, as diffusers (the deepest level's output goes straight to the up path).
        string? mid = c.IsExplicitNull("mid_block_type") ? null : c.String("mid_block_type", "UNetMidBlock2DCrossAttn");
        foreach (var t in down)
            if (!SupportedDownBlocks.Contains(t)) throw new NotSupportedException($"{c.Source}: down block type '{t}' is not supported (supported: {string.Join(", ", SupportedDownBlocks)})");
        foreach (var t in up)
            if (!SupportedUpBlocks.Contains(t)) throw new NotSupportedException($"{c.Source}: up block type '{t}' is not supported (supported: {string.Join(", ", SupportedUpBlocks)})");
        if (mid is not null && !SupportedMidBlocks.Contains(mid)) throw new NotSupportedException($"{c.Source}: mid block type '{mid}' is not supported (supported: {string.Join(", ", SupportedMidBlocks)})");

        var channels = c.LongsOrScalar("block_out_channels", down.Length) ?? [320, 640, 1280, 1280];
        int n = channels.Length;
        if (down.Length != n || up.Length != n)
            throw new InvalidDataException($"{c.Source}: {down.Length} down blocks, {up.Length} up blocks and {n} block_out_channels must agree");

        // Options the reference supports but SD 2.x and DLoRAL never use: refuse rather than compute something else.
        RejectUnless(c, "class_embed_type", null); RejectUnless(c, "addition_embed_type", null);
        RejectUnless(c, "encoder_hid_dim", null); RejectUnless(c, "encoder_hid_dim_type", null);
        RejectUnless(c, "time_cond_proj_dim", null); RejectUnless(c, "num_class_embeds", null);
        RejectUnless(c, "timestep_post_act", null); RejectUnless(c, "time_embedding_act_fn", null);
        RejectUnless(c, "cross_attention_norm", null); RejectUnless(c, "reverse_transformer_layers_per_block", null);
        if (c.String("time_embedding_type", "positional") != "positional") throw Unsupported(c, "time_embedding_type");
        if (c.String("resnet_time_scale_shift", "default") != "default") throw Unsupported(c, "resnet_time_scale_shift");
        if (c.String("attention_type", "default") != "default") throw Unsupported(c, "attention_type");
        if (c.Bool("dual_cross_attention", false)) throw Unsupported(c, "dual_cross_attention");
        if (c.Bool("upcast_attention", false)) throw Unsupported(c, "upcast_attention");
        if (c.Bool("resnet_skip_time_act", false)) throw Unsupported(c, "resnet_skip_time_act");
        if (c.Double("resnet_out_scale_factor", 1.0) != 1.0) throw Unsupported(c, "resnet_out_scale_factor");
        if (c.BoolsOrScalar("only_cross_attention", n, false).Any(b => b)) throw Unsupported(c, "only_cross_attention");
        if (c.Double("dropout", 0.0) != 0.0) { /* dropout is inactive at inference; training helpers add their own */ }

        var headDim = c.LongsOrScalar("attention_head_dim", n) ?? Enumerable.Repeat(8L, n).ToArray();
        var heads = c.LongsOrScalar("num_attention_heads", n) ?? headDim;
        var cfg = new UNet2DConditionConfig
        {
            InChannels = c.Long("in_channels", 4),
            OutChannels = c.Long("out_channels", 4),
            CenterInputSample = c.Bool("center_input_sample", false),
            FlipSinToCos = c.Bool("flip_sin_to_cos", true),
            FreqShift = c.Double("freq_shift", 0),
            DownBlockTypes = down,
            MidBlockType = mid,
            UpBlockTypes = up,
            BlockOutChannels = channels,
            LayersPerBlock = c.LongsOrScalar("layers_per_block", n) ?? Enumerable.Repeat(2L, n).ToArray(),
            DownsamplePadding = c.Long("downsample_padding", 1),
            MidBlockScaleFactor = c.Double("mid_block_scale_factor", 1),
            ActFn = c.String("act_fn", "silu"),
            NormNumGroups = (int)c.Long("norm_num_groups", 32),
            NormEps = c.Double("norm_eps", 1e-5),
            CrossAttentionDim = c.LongsOrScalar("cross_attention_dim", n) ?? Enumerable.Repeat(1280L, n).ToArray(),
            TransformerLayersPerBlock = c.LongsOrScalar("transformer_layers_per_block", n) ?? Enumerable.Repeat(1L, n).ToArray(),
            NumAttentionHeads = heads,
            UseLinearProjection = c.Bool("use_linear_projection", false),
            ConvInKernel = c.Long("conv_in_kernel", 3),
            ConvOutKernel = c.Long("conv_out_kernel", 3),
            TimeEmbeddingDim = c.LongOrNull("time_embedding_dim"),
        };
        for (int i = 0; i < n; i++)
            if (channels[i] % heads[i] != 0)
                throw new InvalidDataException($"{c.Source}: block {i} has {channels[i]} channels, not divisible by {heads[i]} attention heads");
        return cfg;
    }

    private static void RejectUnless(ConfigJson c, string key, object? expected)
    {
        if (expected is null && !c.IsNull(key)) throw Unsupported(c, key);
    }

    private static NotSupportedException Unsupported(ConfigJson c, string key) =>
        new($"{c.Source}: config option '{key}' has a value this port does not implement (only the SD 2.x / DLoRAL settings are supported)");
}
