using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Diffusion.Clip;

#pragma warning disable IDE1006, CA1707 // field names are the PyTorch state_dict names

/// <summary>CLIPMLP: fc1 → activation → fc2.</summary>
public sealed class ClipMlp : nn.Module<Tensor, Tensor>
{
    /// <summary>transformers ACT2FN names this port implements.</summary>
    public static readonly string[] SupportedActivations = ["gelu", "quick_gelu", "gelu_new", "gelu_pytorch_tanh", "relu"];

    private readonly Linear fc1;
    private readonly Linear fc2;
    private readonly string _act;

    public ClipMlp(ClipTextConfig config, Device? device = null, ScalarType? dtype = null) : base(nameof(ClipMlp))
    {
        fc1 = nn.Linear(config.HiddenSize, config.IntermediateSize, device: device, dtype: dtype);
        fc2 = nn.Linear(config.IntermediateSize, config.HiddenSize, device: device, dtype: dtype);
        _act = config.HiddenAct;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = fc1.forward(x);
        h = _act switch
        {
            "gelu" => nn.functional.gelu(h), // exact erf GELU (SD 2.x)
            "quick_gelu" => h * torch.sigmoid(1.702 * h), // SD 1.x
            "gelu_new" or "gelu_pytorch_tanh" => nn.functional.gelu(h, GELU.Approximate.tanh),
            "relu" => nn.functional.relu(h),
            _ => throw new NotSupportedException($"hidden_act '{_act}'"),
        };
        return fc2.forward(h).MoveToOuterDisposeScope();
    }
}
