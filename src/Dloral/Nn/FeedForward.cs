using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Nn;

/// <summary>diffusers <c>GEGLU</c>: proj to 2·inner, then hidden · gelu(gate) (exact erf GELU).</summary>
public sealed class GEGLU : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> proj;

    public GEGLU(long dimIn, long dimOut, ModelOptions o, bool bias = true) : base(nameof(GEGLU))
    {
        proj = o.Linear(dimIn, dimOut * 2, bias);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var parts = proj.call(x).chunk(2, -1);
        return (parts[0] * nn.functional.gelu(parts[1])).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// diffusers <c>FeedForward</c> with activation "geglu": net.0 = GEGLU(dim, 4·dim), net.1 = Dropout, net.2 = Linear(4·dim, dim).
/// </summary>
public sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    private ModuleList<nn.Module<Tensor, Tensor>> net;

    public FeedForward(long dim, ModelOptions o, long mult = 4, bool bias = true) : base(nameof(FeedForward))
    {
        long inner = dim * mult;
        net = new ModuleList<nn.Module<Tensor, Tensor>>(new GEGLU(dim, inner, o, bias), nn.Dropout(0.0), o.Linear(inner, dim, bias));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return net[2].call(net[0].call(x)).MoveToOuterDisposeScope();
    }
}
