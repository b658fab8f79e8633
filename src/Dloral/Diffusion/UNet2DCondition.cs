using Dloral.Nn;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Diffusion;

/// <summary>
/// diffusers v0.25 <c>UNet2DConditionModel</c> built from its config.json: the same code builds the SD 2.1-base UNet,
/// the tiny golden UNet and compact models. <c>forward(sample, timestep, encoder_hidden_states)</c> returns the
/// predicted noise (<c>.sample</c> of the reference). Parameter names equal the diffusers state_dict keys.
/// </summary>
/// <remarks>
/// LoRA contract: every nn.Linear and nn.Conv2d inside the UNet (here and in Dloral.Nn) is held in a field of type
/// <c>Module&lt;Tensor,Tensor&gt;</c> named like its state_dict key (or as an element of a ModuleList, e.g.
/// <c>to_out.0</c>, <c>ff.net.2</c>), and is only ever called through that field / list slot. An adapter injector can
/// therefore replace it in place (reflection on the field, or the list index) with a wrapper and re-register it.
/// </remarks>
public sealed class UNet2DCondition : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> conv_in;
    private Timesteps time_proj;
    private TimestepEmbedding time_embedding;
    private ModuleList<UNetDownBlock> down_blocks;
    private ModuleList<UNetUpBlock> up_blocks;
    private UNetMidBlock? mid_block;
    private Dloral.Nn.GroupNorm conv_norm_out;
    private nn.Module<Tensor, Tensor> conv_out;
    private readonly Func<Tensor, Tensor> _convAct;
    private readonly int _numUpsamplers;

    public UNet2DConditionConfig Config { get; }

    /// <summary>Whether conv weights and activations are kept channels-last (see <see cref="ModelOptions.ChannelsLast"/>).</summary>
    public bool ChannelsLast { get; }

    public UNet2DCondition(UNet2DConditionConfig config, ModelOptions? options = null) : base(nameof(UNet2DCondition))
    {
        var o = options ?? ModelOptions.Default;
        Config = config;
        var ch = config.BlockOutChannels;
        int n = ch.Length;
        conv_in = o.Conv2d(config.InChannels, ch[0], config.ConvInKernel, 1, (config.ConvInKernel - 1) / 2);
        long timeEmbedDim = config.TimeEmbeddingDim ?? ch[0] * 4;
        time_proj = new Timesteps(ch[0], config.FlipSinToCos, config.FreqShift);
        time_embedding = new TimestepEmbedding(ch[0], timeEmbedDim, config.ActFn, o);

        var downs = new List<UNetDownBlock>();
        long outCh = ch[0];
        for (int i = 0; i < n; i++)
        {
            long inCh = outCh;
            outCh = ch[i];
            bool isFinal = i == n - 1;
            bool cross = config.DownBlockTypes[i] == "CrossAttnDownBlock2D";
            downs.Add(new DownBlock2D(config.DownBlockTypes[i], (int)config.LayersPerBlock[i], inCh, outCh, timeEmbedDim, !isFinal,
                config.NormEps, config.ActFn, config.NormNumGroups, config.DownsamplePadding,
                cross ? config.NumAttentionHeads[i] : null, (int)config.TransformerLayersPerBlock[i], config.CrossAttentionDim[i],
                config.UseLinearProjection, o));
        }
        down_blocks = new ModuleList<UNetDownBlock>(downs.ToArray());

        if (config.MidBlockType is not null)
            mid_block = new UNetMidBlock2DCrossAttn(ch[^1], timeEmbedDim, config.NormEps, config.ActFn, config.MidBlockScaleFactor,
                config.NormNumGroups, config.NumAttentionHeads[^1], (int)config.TransformerLayersPerBlock[^1], config.CrossAttentionDim[^1],
                config.UseLinearProjection, o);

        var rch = ch.Reverse().ToArray();
        var rheads = config.NumAttentionHeads.Reverse().ToArray();
        var rlayers = config.LayersPerBlock.Reverse().ToArray();
        var rtl = config.TransformerLayersPerBlock.Reverse().ToArray();
        var rcross = config.CrossAttentionDim.Reverse().ToArray();
        var ups = new List<UNetUpBlock>();
        outCh = rch[0];
        for (int i = 0; i < n; i++)
        {
            bool isFinal = i == n - 1;
            long prevOut = outCh;
            outCh = rch[i];
            long inCh = rch[Math.Min(i + 1, n - 1)];
            bool cross = config.UpBlockTypes[i] == "CrossAttnUpBlock2D";
            if (!isFinal) _numUpsamplers++;
            ups.Add(new UpBlock2D(config.UpBlockTypes[i], (int)rlayers[i] + 1, inCh, outCh, prevOut, timeEmbedDim, !isFinal,
                config.NormEps, config.ActFn, config.NormNumGroups, cross ? rheads[i] : null, (int)rtl[i], rcross[i],
                config.UseLinearProjection, o));
        }
        up_blocks = new ModuleList<UNetUpBlock>(ups.ToArray());

        conv_norm_out = o.GroupNorm(config.NormNumGroups, ch[0], config.NormEps);
        _convAct = Activations.Get(config.ActFn);
        conv_out = o.Conv2d(ch[0], config.OutChannels, config.ConvOutKernel, 1, (config.ConvOutKernel - 1) / 2);
        RegisterComponents();
        ChannelsLast = o.ChannelsLast;
        if (ChannelsLast) MemoryFormat.ParametersToChannelsLast(this);
    }

    /// <summary>Builds from a diffusers unet/config.json.</summary>
    public static UNet2DCondition FromConfigFile(string configPath, ModelOptions? options = null) =>
        new(UNet2DConditionConfig.Load(configPath), options);

    /// <summary>
    /// One UNet evaluation. <paramref name="timestep"/> is a scalar or a [B] tensor (any integer or float dtype);
    /// <paramref name="encoderHiddenStates"/> is [B, 77, cross_attention_dim]. The sample may have any channel count
    /// matching conv_in (DLoRAL widens it to 8) and any H, W (sizes not divisible by 2^levels use explicit upsample sizes).
    /// </summary>
    public override Tensor forward(Tensor sample, Tensor timestep, Tensor encoderHiddenStates)
    {
        using var scope = NewDisposeScope();
        long batch = sample.shape[0];
        if (Config.CenterInputSample) sample = 2 * sample - 1.0;
        if (ChannelsLast) sample = MemoryFormat.ToChannelsLast(sample);

        var timesteps = timestep.dim() == 0 ? timestep.unsqueeze(0) : timestep;
        timesteps = timesteps.to(sample.device).expand(batch);
        var tEmb = time_proj.call(timesteps).to_type(sample.dtype);
        var emb = time_embedding.call(tEmb);

        sample = conv_in.call(sample);
        var residuals = new List<Tensor> { sample };
        foreach (var block in down_blocks) sample = block.Forward(sample, emb, encoderHiddenStates, residuals);

        if (mid_block is not null) sample = mid_block.Forward(sample, emb, encoderHiddenStates);

        long factor = 1L << _numUpsamplers;
        bool forwardUpsampleSize = sample.shape.Length == 4 && (residuals[0].shape[2] % factor != 0 || residuals[0].shape[3] % factor != 0);
        for (int i = 0; i < up_blocks.Count; i++)
        {
            var block = up_blocks[i];
            bool isFinal = i == up_blocks.Count - 1;
            int k = block.ResnetCount;
            var skips = residuals.GetRange(residuals.Count - k, k);
            residuals.RemoveRange(residuals.Count - k, k);
            long[]? upsampleSize = !isFinal && forwardUpsampleSize ? [residuals[^1].shape[2], residuals[^1].shape[3]] : null;
            sample = block.Forward(sample, skips, emb, encoderHiddenStates, upsampleSize);
        }

        sample = conv_out.call(_convAct(conv_norm_out.call(sample)));
        if (ChannelsLast) sample = sample.contiguous();
        return sample.MoveToOuterDisposeScope();
    }

    /// <summary>Convenience overload for an integer timestep shared by the batch.</summary>
    public Tensor forward(Tensor sample, long timestep, Tensor encoderHiddenStates)
    {
        using var t = tensor(new[] { timestep }, ScalarType.Int64, sample.device);
        return forward(sample, t, encoderHiddenStates);
    }
}
