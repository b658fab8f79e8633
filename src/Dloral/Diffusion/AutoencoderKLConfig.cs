using System.Text.Json;

namespace Dloral.Diffusion;

/// <summary>The architecture part of a diffusers <c>AutoencoderKL</c> config.json (v0.25 defaults).</summary>
public sealed record AutoencoderKLConfig
{
    public long InChannels { get; init; } = 3;
    public long OutChannels { get; init; } = 3;
    public string[] DownBlockTypes { get; init; } = ["DownEncoderBlock2D"];
    public string[] UpBlockTypes { get; init; } = ["UpDecoderBlock2D"];
    public long[] BlockOutChannels { get; init; } = [64];
    public int LayersPerBlock { get; init; } = 1;
    public string ActFn { get; init; } = "silu";
    public long LatentChannels { get; init; } = 4;
    public int NormNumGroups { get; init; } = 32;
    /// <summary>Latent scale (SD: 0.18215, the default when the config omits it).</summary>
    public double ScalingFactor { get; init; } = 0.18215;
    public bool MidBlockAddAttention { get; init; } = true;

    public static AutoencoderKLConfig Load(string path) => Parse(ConfigJson.Load(path));

    public static AutoencoderKLConfig FromJson(JsonElement root, string source = "<json>") => Parse(new ConfigJson(root, source));

    private static AutoencoderKLConfig Parse(ConfigJson c)
    {
        var d = new AutoencoderKLConfig();
        var down = c.Strings("down_block_types", d.DownBlockTypes);
        var up = c.Strings("up_block_types", d.UpBlockTypes);
        foreach (var t in down)
            if (t != "DownEncoderBlock2D") throw new NotSupportedException($"{c.Source}: VAE down block type '{t}' is not supported (supported: DownEncoderBlock2D)");
        foreach (var t in up)
            if (t != "UpDecoderBlock2D") throw new NotSupportedException($"{c.Source}: VAE up block type '{t}' is not supported (supported: UpDecoderBlock2D)");
        var channels = c.LongsOrScalar("block_out_channels", down.Length) ?? d.BlockOutChannels;
        if (up.Length != channels.Length || down.Length != channels.Length)
            throw new InvalidDataException($"{c.Source}: {down.Length} down blocks, {up.Length} up blocks and {channels.Length} block_out_channels must agree");
        if (!c.IsNull("latents_mean") || !c.IsNull("latents_std"))
            throw new NotSupportedException($"{c.Source}: config option 'latents_mean'/'latents_std' is not supported");
        if (c.Bool("use_quant_conv", true) == false || c.Bool("use_post_quant_conv", true) == false)
            throw new NotSupportedException($"{c.Source}: config option 'use_quant_conv'/'use_post_quant_conv' false is not supported");
        return new AutoencoderKLConfig
        {
            InChannels = c.Long("in_channels", 3),
            OutChannels = c.Long("out_channels", 3),
            DownBlockTypes = down,
            UpBlockTypes = up,
            BlockOutChannels = channels,
            LayersPerBlock = (int)c.Long("layers_per_block", 1),
            ActFn = c.String("act_fn", "silu"),
            LatentChannels = c.Long("latent_channels", 4),
            NormNumGroups = (int)c.Long("norm_num_groups", 32),
            ScalingFactor = c.Double("scaling_factor", 0.18215),
            MidBlockAddAttention = c.Bool("mid_block_add_attention", true),
        };
    }
}
