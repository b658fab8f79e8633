using System.Text.Json;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Training;

/// <summary>AdamW hyper-parameters (the reference: lr 5e-5, β 0.9/0.999, weight decay 1e-2, ε 1e-8).</summary>
public sealed record AdamWOptions
{
    public double LearningRate { get; init; } = 5e-5;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Epsilon { get; init; } = 1e-8;
    public double WeightDecay { get; init; } = 1e-2;
}

/// <summary>
/// AdamW (PyTorch's <c>torch.optim.AdamW</c> update, non-amsgrad, per-parameter step counts) over NAMED parameters,
/// with state that is plain tensors: saved to and restored from safetensors bit for bit, so a resumed run continues
/// exactly. Only the parameters passed to <see cref="Step"/> move — a parameter frozen in the current stage keeps its
/// moments untouched and its value bit-identical (no weight decay, no momentum drift), which is how DLoRAL's
/// alternating stages must behave. Parameters stored in a low-precision dtype (bf16) get a float32 master copy that
/// the update works on; the parameter receives the rounded master value.
/// </summary>
public sealed class AdamWOptimizer : IDisposable
{
    private sealed class State : IDisposable
    {
        public required Tensor ExpAvg { get; init; }
        public required Tensor ExpAvgSq { get; init; }
        public Tensor? Master { get; init; }
        public long Step { get; set; }

        public void Dispose()
        {
            ExpAvg.Dispose();
            ExpAvgSq.Dispose();
            Master?.Dispose();
        }
    }

    private readonly Dictionary<string, State> _state = new(StringComparer.Ordinal);

    public AdamWOptimizer(AdamWOptions? options = null)
    {
        Options = options ?? new AdamWOptions();
    }

    public AdamWOptions Options { get; }

    /// <summary>Names that have optimizer state.</summary>
    public IReadOnlyCollection<string> StateNames => _state.Keys;

    /// <summary>How many updates <paramref name="name"/> has had (0 = none).</summary>
    public long StepsOf(string name) => _state.TryGetValue(name, out var s) ? s.Step : 0;

    /// <summary>
    /// Clips the global L2 norm of the gradients of <paramref name="parameters"/> to <paramref name="maxNorm"/> as
    /// <c>clip_grad_norm_</c> does (coefficient max/(norm+1e-6), clamped to 1) and returns the norm before clipping.
    /// </summary>
    public static double ClipGradNorm(IEnumerable<Parameter> parameters, double maxNorm)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var grads = parameters.Select(p => p.grad).Where(g => g is not null && g.IsInvalid == false).Select(g => g!).ToList();
        if (grads.Count == 0) return 0;
        var norms = stack(grads.Select(g => g.to_type(ScalarType.Float32).norm()).ToArray());
        var total = norms.norm();
        double totalNorm = total.item<float>();
        if (maxNorm > 0)
        {
            var coef = (maxNorm / (total + 1e-6)).clamp_max(1.0);
            foreach (var g in grads) g.mul_(coef.to_type(g.dtype));
        }
        return totalNorm;
    }

    /// <summary>One AdamW update of the given parameters at learning rate <paramref name="lr"/> (default: the option).</summary>
    public void Step(IEnumerable<(string Name, Parameter Param)> parameters, double? lr = null)
    {
        double rate = lr ?? Options.LearningRate;
        double b1 = Options.Beta1, b2 = Options.Beta2, wd = Options.WeightDecay, eps = Options.Epsilon;
        using var noGrad = no_grad();
        // Explicit Scalars kept reachable (GC.KeepAlive below) until the native calls have returned: an implicitly converted
        // Scalar can be finalised by the GC while libtorch still reads it (a run died once in addcdiv_ with "toFloat" on a
        // garbage value). They are not disposed here: a dispose scope may own them.
        var decay = (1 - rate * wd).ToScalar();
        var beta2 = b2.ToScalar();
        var oneMinusB2 = (1 - b2).ToScalar();
        var epsilon = eps.ToScalar();
        using var oneMinusB1 = tensor(1 - b1); // lerp_ takes its weight as a tensor (what the implicit conversion made)
        foreach (var (name, p) in parameters)
        {
            using var scope = NewDisposeScope();
            var g = p.grad;
            if (g is null) continue; // PyTorch skips parameters without a gradient
            if (!_state.TryGetValue(name, out var s))
            {
                bool low = p.dtype != ScalarType.Float32 && p.dtype != ScalarType.Float64;
                var master = low ? p.detach().to_type(ScalarType.Float32).clone().DetachFromDisposeScope() : null;
                var like = master ?? p;
                s = new State
                {
                    ExpAvg = zeros_like(like).DetachFromDisposeScope(),
                    ExpAvgSq = zeros_like(like).DetachFromDisposeScope(),
                    Master = master,
                };
                _state[name] = s;
            }
            var w = s.Master ?? (Tensor)p;
            var grad = g.to_type(w.dtype);
            s.Step++;
            w.mul_(decay);
            s.ExpAvg.lerp_(grad, oneMinusB1);
            s.ExpAvgSq.mul_(beta2).addcmul_(grad, grad, oneMinusB2);
            double bc1 = 1 - Math.Pow(b1, s.Step);
            double bc2 = 1 - Math.Pow(b2, s.Step);
            var sqrtBc2 = Math.Sqrt(bc2).ToScalar();
            var negStep = (-(rate / bc1)).ToScalar();
            var denom = s.ExpAvgSq.sqrt().div_(sqrtBc2).add_(epsilon);
            w.addcdiv_(s.ExpAvg, denom, negStep);
            GC.KeepAlive(sqrtBc2);
            GC.KeepAlive(negStep);
            if (s.Master is not null) p.copy_(s.Master);
        }
        GC.KeepAlive(decay);
        GC.KeepAlive(beta2);
        GC.KeepAlive(oneMinusB2);
        GC.KeepAlive(epsilon);
    }

    /// <summary>Drops the state of <paramref name="names"/>: their next update starts afresh (moments of weights that were
    /// re-parameterised would push them the old way).</summary>
    public void Forget(IEnumerable<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        foreach (var name in names)
            if (_state.Remove(name, out var s)) s.Dispose();
    }

    /// <summary>The state as tensors (<c>name.exp_avg</c>, <c>name.exp_avg_sq</c>, <c>name.master</c>) plus per-name step counts.</summary>
    public (Dictionary<string, Tensor> Tensors, Dictionary<string, long> Steps) Export()
    {
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var steps = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (name, s) in _state)
        {
            tensors[name + ".exp_avg"] = s.ExpAvg;
            tensors[name + ".exp_avg_sq"] = s.ExpAvgSq;
            if (s.Master is not null) tensors[name + ".master"] = s.Master;
            steps[name] = s.Step;
        }
        return (tensors, steps);
    }

    /// <summary>Replaces the state with an exported one (tensors are copied onto <paramref name="device"/>).</summary>
    public void Import(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, long> steps, Device device, string source)
    {
        foreach (var s in _state.Values) s.Dispose();
        _state.Clear();
        foreach (var (name, step) in steps)
        {
            if (!tensors.TryGetValue(name + ".exp_avg", out var m) || !tensors.TryGetValue(name + ".exp_avg_sq", out var v))
                throw new InvalidDataException($"{source}: optimizer state of '{name}' lacks exp_avg / exp_avg_sq");
            tensors.TryGetValue(name + ".master", out var master);
            _state[name] = new State
            {
                ExpAvg = m.to(device).clone().DetachFromDisposeScope(),
                ExpAvgSq = v.to(device).clone().DetachFromDisposeScope(),
                Master = master?.to(device).clone().DetachFromDisposeScope(),
                Step = step,
            };
        }
    }

    /// <summary>Step counts as JSON (stored in the checkpoint's metadata).</summary>
    public static string StepsToJson(IReadOnlyDictionary<string, long> steps) => JsonSerializer.Serialize(steps);

    public static Dictionary<string, long> StepsFromJson(string json) =>
        JsonSerializer.Deserialize<Dictionary<string, long>>(json) ?? throw new InvalidDataException("optimizer steps: empty JSON");

    public void Dispose()
    {
        foreach (var s in _state.Values) s.Dispose();
        _state.Clear();
    }
}
