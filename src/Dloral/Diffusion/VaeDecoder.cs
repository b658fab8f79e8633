using Dloral.Nn;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Diffusion;

/// <summary>diffusers <c>UpDecoderBlock2D</c>: resnets (no time embedding), then nearest ×2 + conv.</summary>
public sealed class UpDecoderBlock2D : nn.Module<Tensor, Tensor>
{
    private ModuleList<ResnetBlock2D> resnets;
    private ModuleList<Upsample2D> upsamplers;

    public UpDecoderBlock2D(int numLayers, long inChannels, long outChannels, bool addUpsample, double eps, string actFn, int groups, ModelOptions o)
        : base(nameof(UpDecoderBlock2D))
    {
        resnets = new ModuleList<ResnetBlock2D>(Enumerable.Range(0, numLayers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, null, groups, eps, actFn, 1.0, o)).ToArray());
        upsamplers = addUpsample ? new ModuleList<Upsample2D>(new Upsample2D(outChannels, outChannels, o)) : new ModuleList<Upsample2D>();
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        foreach (var r in resnets) hidden = r.call(hidden, null);
        foreach (var u in upsamplers) hidden = u.call(hidden, null);
        return hidden.MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers VAE <c>Decoder</c>: conv_in, mid block, up blocks (layers_per_block + 1 resnets each), GroupNorm/SiLU, conv_out.</summary>
public sealed class VaeDecoder : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> conv_in;
    private ModuleList<UpDecoderBlock2D> up_blocks;
    private UNetMidBlock2D mid_block;
    private Dloral.Nn.GroupNorm conv_norm_out;
    private nn.Module<Tensor, Tensor> conv_out;
    private readonly Func<Tensor, Tensor> _act;

    public VaeDecoder(AutoencoderKLConfig c, ModelOptions o) : base("Decoder")
    {
        var ch = c.BlockOutChannels;
        var rch = ch.Reverse().ToArray();
        conv_in = o.Conv2d(c.LatentChannels, ch[^1], 3, 1, 1);
        var blocks = new List<UpDecoderBlock2D>();
        long outCh = rch[0];
        for (int i = 0; i < rch.Length; i++)
        {
            long prev = outCh;
            outCh = rch[i];
            blocks.Add(new UpDecoderBlock2D(c.LayersPerBlock + 1, prev, outCh, i != rch.Length - 1, 1e-6, c.ActFn, c.NormNumGroups, o));
        }
        up_blocks = new ModuleList<UpDecoderBlock2D>(blocks.ToArray());
        mid_block = new UNetMidBlock2D(ch[^1], 1e-6, c.ActFn, c.NormNumGroups, ch[^1], c.MidBlockAddAttention, o);
        conv_norm_out = o.GroupNorm(c.NormNumGroups, ch[0], 1e-6);
        _act = Activations.Get(c.ActFn);
        conv_out = o.Conv2d(ch[0], c.OutChannels, 3, 1, 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor z)
    {
        using var scope = NewDisposeScope();
        var h = conv_in.call(z);
        h = mid_block.call(h);
        foreach (var b in up_blocks) h = b.call(h);
        h = conv_out.call(_act(conv_norm_out.call(h)));
        return h.MoveToOuterDisposeScope();
    }
}
