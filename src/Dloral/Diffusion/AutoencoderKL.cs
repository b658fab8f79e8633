using Dloral.Nn;
using static TorchSharp.torch;

namespace Dloral.Diffusion;

/// <summary>
/// diffusers v0.25 <c>AutoencoderKL</c> built from its config.json: <see cref="Encode"/> gives the latent
/// <see cref="DiagonalGaussian"/> (quant_conv output), <see cref="Decode"/> maps a latent through post_quant_conv and
/// the decoder. Neither applies <see cref="ScalingFactor"/>: callers multiply (encode) and divide (decode) as SD does.
/// </summary>
public sealed class AutoencoderKL : nn.Module<Tensor, Tensor>
{
    private VaeEncoder encoder;
    private VaeDecoder decoder;
    private nn.Module<Tensor, Tensor> quant_conv;
    private nn.Module<Tensor, Tensor> post_quant_conv;

    public AutoencoderKLConfig Config { get; }

    /// <summary>Whether conv weights and activations are kept channels-last.</summary>
    public bool ChannelsLast { get; }

    /// <summary>Latent scale from the config (0.18215 for SD).</summary>
    public double ScalingFactor => Config.ScalingFactor;

    /// <summary>Pixels per latent pixel along each axis (8 for SD).</summary>
    public int DownscaleFactor => 1 << (Config.BlockOutChannels.Length - 1);

    public AutoencoderKL(AutoencoderKLConfig config, ModelOptions? options = null) : base(nameof(AutoencoderKL))
    {
        var o = options ?? ModelOptions.Default;
        Config = config;
        encoder = new VaeEncoder(config, o);
        decoder = new VaeDecoder(config, o);
        quant_conv = o.Conv2d(2 * config.LatentChannels, 2 * config.LatentChannels, 1);
        post_quant_conv = o.Conv2d(config.LatentChannels, config.LatentChannels, 1);
        RegisterComponents();
        ChannelsLast = o.ChannelsLast;
        if (ChannelsLast) MemoryFormat.ParametersToChannelsLast(this);
    }

    public static AutoencoderKL FromConfigFile(string configPath, ModelOptions? options = null) =>
        new(AutoencoderKLConfig.Load(configPath), options);

    /// <summary>Encoder + quant_conv: the raw moments [B, 2·latent, H/8, W/8] (mean ‖ unclamped logvar).</summary>
    public Tensor EncodeMoments(Tensor image)
    {
        using var scope = NewDisposeScope();
        if (ChannelsLast) image = MemoryFormat.ToChannelsLast(image);
        var moments = quant_conv.call(encoder.call(image));
        return (ChannelsLast ? moments.contiguous() : moments).MoveToOuterDisposeScope();
    }

    /// <summary>Image in [−1, 1], [B, 3, H, W] → latent distribution.</summary>
    public DiagonalGaussian Encode(Tensor image)
    {
        using var moments = EncodeMoments(image);
        return new DiagonalGaussian(moments);
    }

    /// <summary>Latent (unscaled, i.e. already divided by the scaling factor) → image, no clamp.</summary>
    public Tensor Decode(Tensor latent)
    {
        using var scope = NewDisposeScope();
        if (ChannelsLast) latent = MemoryFormat.ToChannelsLast(latent);
        var image = decoder.call(post_quant_conv.call(latent));
        return (ChannelsLast ? image.contiguous() : image).MoveToOuterDisposeScope();
    }

    /// <summary>Reconstruction through the distribution mean (reference <c>forward</c> with sample_posterior=false).</summary>
    public override Tensor forward(Tensor image)
    {
        using var posterior = Encode(image);
        return Decode(posterior.Mean);
    }

    /// <summary>Exposes the encoder and decoder (for tiling, which needs their stages).</summary>
    internal VaeEncoder Encoder => encoder;
    internal VaeDecoder Decoder => decoder;
    internal nn.Module<Tensor, Tensor> QuantConv => quant_conv;
    internal nn.Module<Tensor, Tensor> PostQuantConv => post_quant_conv;
}
