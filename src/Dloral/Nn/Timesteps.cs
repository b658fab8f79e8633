using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Nn;

/// <summary>
/// Sinusoidal timestep embedding (diffusers <c>get_timestep_embedding</c> / <c>Timesteps</c>):
/// exponent = −ln(max_period)·i/(half − freq_shift), emb = [sin, cos] (or [cos, sin] with flip_sin_to_cos).
/// Computed in float32 like the reference; the caller casts to the model dtype.
/// </summary>
public sealed class Timesteps : nn.Module<Tensor, Tensor>
{
    private readonly long _dim;
    private readonly bool _flipSinToCos;
    private readonly double _freqShift;
    private const double MaxPeriod = 10000;

    public Timesteps(long numChannels, bool flipSinToCos, double freqShift) : base(nameof(Timesteps))
    {
        _dim = numChannels; _flipSinToCos = flipSinToCos; _freqShift = freqShift;
        RegisterComponents();
    }

    public override Tensor forward(Tensor timesteps)
    {
        using var scope = NewDisposeScope();
        if (timesteps.dim() != 1) throw new ArgumentException($"timesteps must be 1-D, got [{string.Join(",", timesteps.shape)}]");
        long half = _dim / 2;
        var exponent = arange(0, half, dtype: ScalarType.Float32, device: timesteps.device) * (-Math.Log(MaxPeriod));
        exponent = exponent / (half - _freqShift);
        var freqs = exponent.exp();
        var emb = timesteps.to_type(ScalarType.Float32).unsqueeze(1) * freqs.unsqueeze(0);
        emb = cat([emb.sin(), emb.cos()], -1);
        if (_flipSinToCos) emb = cat([emb[.., (int)half..], emb[.., ..(int)half]], -1);
        if (_dim % 2 == 1) emb = nn.functional.pad(emb, [0, 1, 0, 0]);
        return emb.MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers <c>TimestepEmbedding</c>: linear_1 → act → linear_2.</summary>
public sealed class TimestepEmbedding : nn.Module<Tensor, Tensor>
{
    // LoRA-injectable layers are typed Module<Tensor,Tensor> (see UNet2DCondition).
    private nn.Module<Tensor, Tensor> linear_1;
    private nn.Module<Tensor, Tensor> linear_2;
    private readonly Func<Tensor, Tensor> _act;

    public TimestepEmbedding(long inChannels, long timeEmbedDim, string actFn, ModelOptions o) : base(nameof(TimestepEmbedding))
    {
        linear_1 = o.Linear(inChannels, timeEmbedDim);
        linear_2 = o.Linear(timeEmbedDim, timeEmbedDim);
        _act = Activations.Get(actFn);
        RegisterComponents();
    }

    public override Tensor forward(Tensor sample)
    {
        using var scope = NewDisposeScope();
        return linear_2.call(_act(linear_1.call(sample))).MoveToOuterDisposeScope();
    }
}
