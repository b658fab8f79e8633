using System.Globalization;
using Dloral.Checkpoints;
using static TorchSharp.torch;

namespace Dloral.Training;

/// <summary>
/// Exponential moving average of the trained weights (<c>optimizer.ema_decay</c>, as Real-ESRGAN trains with 0.999):
/// validation and export use the average. Batch-1 training moves the weights noisily — the shipped compact run's
/// validation PSNR swung by ±0.3 dB between checkpoints 500 steps apart — and the average keeps the signal of the last
/// ~1/(1−decay) steps without that noise. The shadow weights are float32 (bf16 training included) and are saved with
/// every checkpoint, so a resumed run continues the same average bit for bit.
/// </summary>
public sealed class WeightAverage : IDisposable
{
    /// <summary>The checkpoint file of the shadow weights.</summary>
    public const string FileName = "ema.safetensors";

    private readonly Dictionary<string, Tensor> _shadow = new(StringComparer.Ordinal);

    /// <summary>Starts the average at the current values of <paramref name="parameters"/>.</summary>
    public WeightAverage(IEnumerable<NamedParameter> parameters, double decay)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (decay is <= 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(decay), decay, "EMA decay must be in (0, 1).");
        Decay = decay;
        using var noGrad = no_grad();
        foreach (var p in parameters) _shadow.Add(p.Name, p.Param.detach().to_type(ScalarType.Float32).clone());
    }

    /// <summary>The nominal decay per update.</summary>
    public double Decay { get; }

    /// <summary>Updates folded into the average so far.</summary>
    public long Updates { get; private set; }

    /// <summary>The decay of the next update: min(decay, (1+n)/(10+n)), so the first updates are not swamped by the start value.</summary>
    public double NextDecay => Math.Min(Decay, (1.0 + Updates) / (10.0 + Updates));

    /// <summary>The shadow value of one parameter (for tests and inspection).</summary>
    public Tensor this[string name] => _shadow[name];

    /// <summary>shadow ← d·shadow + (1−d)·param for every averaged parameter.</summary>
    public void Update(IEnumerable<NamedParameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        double d = NextDecay;
        using var noGrad = no_grad();
        foreach (var p in parameters)
        {
            if (!_shadow.TryGetValue(p.Name, out var s)) continue;
            using var value = p.Param.detach().to_type(ScalarType.Float32);
            s.lerp_(value, 1 - d);
        }
        Updates++;
    }

    /// <summary>
    /// Puts the averaged weights into <paramref name="parameters"/> until the returned handle is disposed, which puts the
    /// trained weights back exactly (validation and export run in between).
    /// </summary>
    public IDisposable Apply(IEnumerable<NamedParameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var saved = new List<(Tensor Param, Tensor Value)>();
        using var noGrad = no_grad();
        foreach (var p in parameters)
        {
            if (!_shadow.TryGetValue(p.Name, out var s)) continue;
            saved.Add((p.Param, p.Param.detach().clone()));
            p.Param.copy_(s);
        }
        return new Restore(saved);
    }

    private sealed class Restore(List<(Tensor Param, Tensor Value)> saved) : IDisposable
    {
        public void Dispose()
        {
            using var noGrad = no_grad();
            foreach (var (param, value) in saved)
            {
                param.copy_(value);
                value.Dispose();
            }
            saved.Clear();
        }
    }

    /// <summary>Whether <paramref name="name"/> is averaged.</summary>
    public bool Contains(string name) => _shadow.ContainsKey(name);

    /// <summary>Puts the averaged weights into <paramref name="parameters"/> for good (the base stage's hand-over).</summary>
    public void CopyTo(IEnumerable<NamedParameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        using var noGrad = no_grad();
        foreach (var p in parameters)
            if (_shadow.TryGetValue(p.Name, out var s)) p.Param.copy_(s);
    }

    /// <summary>Writes the shadow weights (and the update count) to <paramref name="path"/>.</summary>
    public void Save(string path) =>
        SafeTensorsWriter.Save(path, _shadow.ToList(), new Dictionary<string, string>
        {
            ["updates"] = Updates.ToString(CultureInfo.InvariantCulture),
            ["decay"] = Decay.ToString("R", CultureInfo.InvariantCulture),
        });

    /// <summary>
    /// Replaces the shadow weights with those saved at <paramref name="path"/>. Every averaged name must be there with the
    /// same shape; the decay of the config (not the file's) applies from here on.
    /// </summary>
    public void Load(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        if (!file.Metadata.TryGetValue("updates", out var updates) || !long.TryParse(updates, NumberStyles.Integer, CultureInfo.InvariantCulture, out long n))
            throw new InvalidDataException($"{path}: no 'updates' metadata (not an EMA file)");
        var missing = _shadow.Keys.Where(k => !file.Contains(k)).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException($"{path}: does not match the model being trained (missing {missing.Count}: {string.Join(", ", missing.Take(10))})");
        using var noGrad = no_grad();
        foreach (var (name, shadow) in _shadow)
        {
            if (!file.Entries[name].Shape.SequenceEqual(shadow.shape))
                throw new InvalidDataException($"{path}: {name} is [{string.Join(",", file.Entries[name].Shape)}], the model has [{string.Join(",", shadow.shape)}]");
            using var t = file.Load(name);
            shadow.copy_(t);
        }
        Updates = n;
    }

    public void Dispose()
    {
        foreach (var t in _shadow.Values) t.Dispose();
        _shadow.Clear();
    }
}
