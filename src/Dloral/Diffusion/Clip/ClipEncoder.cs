using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Diffusion.Clip;

#pragma warning disable IDE1006, CA1707 // field names are the PyTorch state_dict names

/// <summary>CLIPEncoder: the stack of <see cref="ClipEncoderLayer"/>s.</summary>
public sealed class ClipEncoder : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly ModuleList<ClipEncoderLayer> layers;

    public ClipEncoder(ClipTextConfig config, Device? device = null, ScalarType? dtype = null) : base(nameof(ClipEncoder))
    {
        layers = new ModuleList<ClipEncoderLayer>();
        for (var i = 0; i < config.NumHiddenLayers; i++)
            layers.Add(new ClipEncoderLayer(config, device, dtype));
        RegisterComponents();
    }

    public int LayerCount => layers.Count;

    public override Tensor forward(Tensor x, Tensor causalMask) => Forward(x, causalMask, null);

    /// <summary>Runs every layer; when <paramref name="hiddenStates"/> is given, appends each layer's
    /// output to it (detached from every dispose scope: the caller disposes them).</summary>
    public Tensor Forward(Tensor x, Tensor causalMask, List<Tensor>? hiddenStates)
    {
        using var scope = NewDisposeScope();
        var h = x;
        foreach (var layer in layers)
        {
            h = layer.forward(h, causalMask);
            // A detached alias: the caller owns the recorded states, the flow keeps its own handle.
            hiddenStates?.Add(h.alias().DetachFromDisposeScope());
        }
        return h.MoveToOuterDisposeScope();
    }
}
