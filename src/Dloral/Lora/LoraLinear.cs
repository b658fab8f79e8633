using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Lora;

/// <summary>LoRA around an <see cref="Linear"/>: A = Linear(in, r, no bias), B = Linear(r, out, no bias), ΔW = B·A.</summary>
public sealed class LoraLinear : LoraLayer
{
    private readonly Linear _linear;

    public LoraLinear(Linear baseLayer) : base("LoraLinear", baseLayer)
    {
        _linear = baseLayer;
    }

    public long InFeatures => _linear.in_features;

    public long OutFeatures => _linear.out_features;

    public override Parameter BaseWeight => _linear.weight;

    protected override (nn.Module<Tensor, Tensor> A, nn.Module<Tensor, Tensor> B) CreateAdapterModules(int rank, Device device, ScalarType dtype) =>
        (nn.Linear(_linear.in_features, rank, hasBias: false, device: device, dtype: dtype),
         nn.Linear(rank, _linear.out_features, hasBias: false, device: device, dtype: dtype));

    protected override Tensor ComputeDelta(Tensor a, Tensor b) => b.matmul(a);

    protected override Tensor ApplyLowRank(Tensor x, Tensor a, Tensor b) =>
        nn.functional.linear(nn.functional.linear(x, a), b);
}
