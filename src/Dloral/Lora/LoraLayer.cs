using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Lora;

/// <summary>
/// A PEFT-style LoRA wrapper around a Linear or Conv2d: <c>y = base(x) + Σ_active w·scaling·B(A(x))</c>
/// with several named adapters per layer. Parameter names are PEFT's: <c>base_layer.weight</c>,
/// <c>lora_A.&lt;adapter&gt;.weight</c>, <c>lora_B.&lt;adapter&gt;.weight</c>.
/// </summary>
/// <remarks>
/// As in PEFT, the active-adapter list may name adapters this layer does not have; they are skipped.
/// A per-adapter weight multiplies the scaling (PEFT's <c>set_scale</c>, diffusers'
/// <c>set_weights_and_activate_adapters</c>). Merging adds the active adapters' deltas into the base weight;
/// while merged, changing the active set or weights unmerges and re-merges so results stay consistent.
/// </remarks>
public abstract class LoraLayer : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006, CA1051 // field names are the PEFT state_dict keys
    protected readonly nn.Module<Tensor, Tensor> base_layer;
    protected readonly AdapterModules lora_A;
    protected readonly AdapterModules lora_B;
#pragma warning restore IDE1006, CA1051

    private readonly Dictionary<string, LoraAdapterConfig> _configs = new(StringComparer.Ordinal);
    private readonly List<string> _addOrder = [];
    private List<(string Name, double Weight)> _active = [];
    private readonly List<(string Name, double Scale)> _merged = [];
    private bool _mergeRequested;
    private bool _disabled;

    protected LoraLayer(string name, nn.Module<Tensor, Tensor> baseLayer) : base(name)
    {
        ArgumentNullException.ThrowIfNull(baseLayer);
        if (baseLayer is LoraLayer) throw new ArgumentException("cannot wrap a LoRA layer in another LoRA layer", nameof(baseLayer));
        base_layer = baseLayer;
        lora_A = new AdapterModules();
        lora_B = new AdapterModules();
        RegisterComponents();
    }

    /// <summary>The wrapped Linear / Conv2d.</summary>
    public nn.Module<Tensor, Tensor> BaseLayer => base_layer;

    /// <summary>The base layer's weight parameter (the one Merge() changes).</summary>
    public abstract Parameter BaseWeight { get; }

    /// <summary>Adapters of this layer in the order they were added.</summary>
    public IReadOnlyList<string> Adapters => _addOrder;

    public bool HasAdapter(string name) => _configs.ContainsKey(name);

    public LoraAdapterConfig ConfigOf(string name) =>
        _configs.TryGetValue(name, out var c) ? c : throw new KeyNotFoundException($"no LoRA adapter named '{name}' in this layer");

    /// <summary>The active adapters (possibly naming adapters this layer lacks) and their weights.</summary>
    public IReadOnlyList<(string Name, double Weight)> ActiveAdapters => _active;

    public bool AdaptersDisabled => _disabled;

    /// <summary>True when adapter deltas are currently folded into the base weight.</summary>
    public bool IsMerged => _merged.Count > 0;

    /// <summary>
    /// True when forward is exactly the base layer with its current weight: adapters disabled, or every active adapter
    /// this layer has (with a non-zero weight) merged into the base weight.
    /// </summary>
    public bool ComputesBaseOnly
    {
        get
        {
            if (_disabled) return true;
            foreach (var (name, weight) in _active)
                if (weight != 0 && _configs.ContainsKey(name) && !IsMergedAdapter(name)) return false;
            return true;
        }
    }

    /// <summary>The adapter's A module (Linear in→r or Conv2d in→r with the base kernel).</summary>
    public nn.Module<Tensor, Tensor> LoraA(string adapter) => lora_A[adapter];

    /// <summary>The adapter's B module (Linear r→out or 1×1 Conv2d r→out).</summary>
    public nn.Module<Tensor, Tensor> LoraB(string adapter) => lora_B[adapter];

    /// <summary>Creates the adapter's A and B; A ~ N(0, (1/r)²) (PEFT "gaussian"), B = 0, on the base weight's device and dtype.</summary>
    public void AddAdapter(string adapter, LoraAdapterConfig config, Generator? generator = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(adapter);
        ArgumentNullException.ThrowIfNull(config);
        if (adapter.Contains('.', StringComparison.Ordinal)) throw new ArgumentException($"adapter name '{adapter}' must not contain '.'", nameof(adapter));
        if (_configs.ContainsKey(adapter)) throw new InvalidOperationException($"adapter '{adapter}' already exists in this layer");
        if (config.Rank <= 0) throw new ArgumentOutOfRangeException(nameof(config), config.Rank, "LoRA rank must be positive");
        var w = BaseWeight;
        var (a, b) = CreateAdapterModules(config.Rank, w.device, w.dtype);
        if (w.device_type != DeviceType.META) // meta: names and shapes only, nothing to initialise
        using (no_grad())
        {
            var aw = a.parameters().First();
            // Drawn explicitly: init.normal_ does not honour a generator in every TorchSharp build.
            using var draw = torch.randn(aw.shape, dtype: ScalarType.Float32, generator: generator);
            aw.copy_(draw.mul_(1.0 / config.Rank));
            foreach (var p in b.parameters()) p.zero_();
        }
        foreach (var p in a.parameters()) p.requires_grad = false;
        foreach (var p in b.parameters()) p.requires_grad = false;
        lora_A.Add(adapter, a);
        lora_B.Add(adapter, b);
        _configs.Add(adapter, config);
        _addOrder.Add(adapter);
    }

    /// <summary>Sets which adapters are active and their weights (default 1). Names this layer lacks are kept and ignored, as in PEFT.</summary>
    public void SetAdapters(IReadOnlyList<string> names, IReadOnlyList<double>? weights = null)
    {
        ArgumentNullException.ThrowIfNull(names);
        if (weights is not null && weights.Count != names.Count)
            throw new ArgumentException($"{names.Count} adapter names but {weights.Count} weights", nameof(weights));
        var next = new List<(string, double)>(names.Count);
        for (int i = 0; i < names.Count; i++)
        {
            double wi = weights?[i] ?? 1.0;
            if (!double.IsFinite(wi)) throw new ArgumentOutOfRangeException(nameof(weights), wi, $"weight of adapter '{names[i]}' must be finite");
            next.Add((names[i], wi));
        }
        bool remerge = _mergeRequested;
        if (IsMerged) UnmergeCore();
        _active = next;
        if (remerge && !_disabled) MergeCore();
    }

    /// <summary>Base layer only (unmerges first if merged; Merge state is restored by EnableAdapters).</summary>
    public void DisableAdapters()
    {
        if (IsMerged) UnmergeCore();
        _disabled = true;
    }

    public void EnableAdapters()
    {
        _disabled = false;
        if (_mergeRequested && !IsMerged) MergeCore();
    }

    /// <summary>Folds the active adapters (with their weights) into the base weight: W += Σ w·scaling·ΔW.</summary>
    public void Merge()
    {
        _mergeRequested = true;
        if (!_disabled && !IsMerged) MergeCore();
    }

    /// <summary>Restores the base weight (W −= the merged deltas, in reverse order).</summary>
    public void Unmerge()
    {
        _mergeRequested = false;
        if (IsMerged) UnmergeCore();
    }

    /// <summary>ΔW = B·A in the base weight's shape (no scaling), in float32 unless the weights are float64.</summary>
    public Tensor DeltaWeight(string adapter)
    {
        using var scope = NewDisposeScope();
        var a = lora_A[adapter].parameters().First();
        var b = lora_B[adapter].parameters().First();
        var dt = a.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        return ComputeDelta(a.to_type(dt), b.to_type(dt)).MoveToOuterDisposeScope();
    }

    /// <summary>PEFT's get_delta_weight: the scaled delta of one adapter at a given weight.</summary>
    protected abstract Tensor ComputeDelta(Tensor a, Tensor b);

    protected abstract (nn.Module<Tensor, Tensor> A, nn.Module<Tensor, Tensor> B) CreateAdapterModules(int rank, Device device, ScalarType dtype);

    private void MergeCore()
    {
        using var guard = no_grad();
        var w = BaseWeight;
        foreach (var (name, weight) in _active)
        {
            if (!_configs.TryGetValue(name, out var cfg) || weight == 0) continue;
            double scale = weight * cfg.Scaling;
            AddDelta(w, name, scale);
            _merged.Add((name, scale));
        }
    }

    private void UnmergeCore()
    {
        using var guard = no_grad();
        var w = BaseWeight;
        for (int i = _merged.Count - 1; i >= 0; i--)
            AddDelta(w, _merged[i].Name, -_merged[i].Scale);
        _merged.Clear();
    }

    private void AddDelta(Parameter w, string adapter, double scale)
    {
        using var scope = NewDisposeScope();
        var delta = DeltaWeight(adapter).mul_(scale);
        if (w.dtype == delta.dtype) w.add_(delta);
        else w.copy_(w.to_type(delta.dtype).add_(delta).to_type(w.dtype)); // low-precision weights: add in float32, round once
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var result = base_layer.call(x);
        if (!_disabled)
        {
            List<(string Name, double Scale)>? branches = null;
            foreach (var (name, weight) in _active)
            {
                if (weight == 0 || !_configs.TryGetValue(name, out var cfg) || IsMergedAdapter(name)) continue;
                (branches ??= []).Add((name, weight * cfg.Scaling));
            }
            if (branches is [var single])
            {
                // PEFT's own order of operations: result + B(A(x))·scaling.
                result = result + lora_B[single.Name].call(lora_A[single.Name].call(x)) * single.Scale;
            }
            else if (branches is not null)
            {
                // Several adapters as ONE low-rank branch of rank Σr: A = [A₁;A₂;…], B = [s₁B₁ s₂B₂ …]. Same sum, a third of
                // the native calls (which dominate the cost of small LoRA ops).
                var a = cat(branches.Select(b => WeightOf(lora_A[b.Name])).ToArray(), 0);
                var bw = cat(branches.Select(b => WeightOf(lora_B[b.Name]) * b.Scale).ToArray(), 1);
                result = result + ApplyLowRank(x, a, bw);
            }
        }
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>B(A(x)) with explicit (possibly concatenated) A and B weights, with the layer's A/B geometry.</summary>
    protected abstract Tensor ApplyLowRank(Tensor x, Tensor a, Tensor b);

    private static Tensor WeightOf(nn.Module<Tensor, Tensor> m) => m switch
    {
        Linear l => l.weight,
        Conv2d c => c.weight,
        _ => throw new InvalidOperationException($"unexpected LoRA module {m.GetType().Name}"),
    };

    private bool IsMergedAdapter(string name)
    {
        foreach (var (n, _) in _merged) if (n == name) return true;
        return false;
    }
}
