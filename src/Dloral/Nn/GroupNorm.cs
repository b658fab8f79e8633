using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Nn;

/// <summary>
/// GroupNorm over [B, C, *] with affine <c>weight</c>/<c>bias</c> (the torch.nn.GroupNorm state_dict). Normally it is
/// the fused <c>group_norm</c> op. For tiled VAE processing it can instead record the per-(sample, group) statistics of
/// one pass (<see cref="Record"/>) and normalise later passes with those fixed statistics (<see cref="UseFixedStatistics"/>),
/// so every tile is normalised like the whole image.
/// </summary>
public sealed class GroupNorm : nn.Module<Tensor, Tensor>
{
    private Parameter weight;
    private Parameter bias;
    private readonly long _groups;
    private readonly double _eps;
    private Tensor? _mean, _var;
    private bool _record, _fixed;

    public long Groups => _groups;
    public double Eps => _eps;

    public GroupNorm(long groups, long channels, double eps, Device? device = null, ScalarType dtype = ScalarType.Float32) : base(nameof(GroupNorm))
    {
        if (channels % groups != 0) throw new ArgumentException($"GroupNorm: {channels} channels are not divisible into {groups} groups");
        _groups = groups; _eps = eps;
        weight = new Parameter(ones(channels, dtype: dtype, device: device));
        bias = new Parameter(zeros(channels, dtype: dtype, device: device));
        RegisterComponents();
    }

    /// <summary>Starts recording: the next forward stores its statistics (and normalises normally).</summary>
    public void Record() { ClearStatistics(); _record = true; }

    /// <summary>Normalise with the recorded statistics instead of the input's own.</summary>
    public void UseFixedStatistics()
    {
        if (_mean is null) throw new InvalidOperationException("GroupNorm: no statistics were recorded");
        _record = false; _fixed = true;
    }

    /// <summary>Back to ordinary GroupNorm; frees recorded statistics.</summary>
    public void ClearStatistics()
    {
        _mean?.Dispose(); _var?.Dispose(); _mean = _var = null; _record = _fixed = false;
    }

    public override Tensor forward(Tensor x)
    {
        if (!_record && !_fixed) return nn.functional.group_norm(x, _groups, weight, bias, _eps);
        using var scope = NewDisposeScope();
        long b = x.shape[0], c = x.shape[1];
        var grouped = x.to_type(ScalarType.Float32).reshape(b, _groups, -1);
        if (_record)
        {
            var (v, m) = var_mean(grouped, 2, unbiased: false, keepdim: true);
            _mean = m.detach().DetachFromDisposeScope();
            _var = v.detach().DetachFromDisposeScope();
            _record = false;
            return nn.functional.group_norm(x, _groups, weight, bias, _eps).MoveToOuterDisposeScope();
        }
        if (_mean!.shape[0] != b) throw new InvalidOperationException($"GroupNorm: statistics recorded for batch {_mean.shape[0]}, input has batch {b}");
        var normed = (grouped - _mean) * (_var! + _eps).rsqrt();
        var shape = new long[x.dim()];
        shape[0] = 1; shape[1] = c;
        for (int i = 2; i < shape.Length; i++) shape[i] = 1;
        var y = normed.reshape(x.shape).to_type(x.dtype) * weight.view(shape) + bias.view(shape);
        return y.MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) ClearStatistics();
        base.Dispose(disposing);
    }
}
