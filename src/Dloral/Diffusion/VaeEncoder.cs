using Dloral.Nn;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Diffusion;

/// <summary>diffusers <c>DownEncoderBlock2D</c>: resnets (no time embedding), then a downsampler padded right/bottom.</summary>
public sealed class DownEncoderBlock2D : nn.Module<Tensor, Tensor>
{
    private ModuleList<ResnetBlock2D> resnets;
    private ModuleList<Downsample2D> downsamplers;

    public DownEncoderBlock2D(int numLayers, long inChannels, long outChannels, bool addDownsample, double eps, string actFn, int groups, ModelOptions o)
        : base(nameof(DownEncoderBlock2D))
    {
        resnets = new ModuleList<ResnetBlock2D>(Enumerable.Range(0, numLayers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, null, groups, eps, actFn, 1.0, o)).ToArray());
        downsamplers = addDownsample ? new ModuleList<Downsample2D>(new Downsample2D(outChannels, outChannels, 0, o)) : new ModuleList<Downsample2D>();
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        foreach (var r in resnets) hidden = r.call(hidden, null);
        foreach (var d in downsamplers) hidden = d.call(hidden);
        return hidden.MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers VAE <c>Encoder</c>: conv_in, down blocks, mid block, GroupNorm/SiLU, conv_out to 2·latent channels (mean ‖ logvar).</summary>
public sealed class VaeEncoder : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> conv_in;
    private ModuleList<DownEncoderBlock2D> down_blocks;
    private UNetMidBlock2D mid_block;
    private Dloral.Nn.GroupNorm conv_norm_out;
    private nn.Module<Tensor, Tensor> conv_out;
    private readonly Func<Tensor, Tensor> _act;

    public VaeEncoder(AutoencoderKLConfig c, ModelOptions o) : base("Encoder")
    {
        var ch = c.BlockOutChannels;
        conv_in = o.Conv2d(c.InChannels, ch[0], 3, 1, 1);
        var blocks = new List<DownEncoderBlock2D>();
        long outCh = ch[0];
        for (int i = 0; i < ch.Length; i++)
        {
            long inCh = outCh;
            outCh = ch[i];
            blocks.Add(new DownEncoderBlock2D(c.LayersPerBlock, inCh, outCh, i != ch.Length - 1, 1e-6, c.ActFn, c.NormNumGroups, o));
        }
        down_blocks = new ModuleList<DownEncoderBlock2D>(blocks.ToArray());
        mid_block = new UNetMidBlock2D(ch[^1], 1e-6, c.ActFn, c.NormNumGroups, ch[^1], c.MidBlockAddAttention, o);
        conv_norm_out = o.GroupNorm(c.NormNumGroups, ch[^1], 1e-6);
        _act = Activations.Get(c.ActFn);
        conv_out = o.Conv2d(ch[^1], 2 * c.LatentChannels, 3, 1, 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = conv_in.call(x);
        foreach (var b in down_blocks) h = b.call(h);
        h = mid_block.call(h);
        h = conv_out.call(_act(conv_norm_out.call(h)));
        return h.MoveToOuterDisposeScope();
    }
}
