using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Lora;

/// <summary>
/// An ordered name → module container that (unlike TorchSharp's ModuleDict) registers modules added after
/// construction, so <c>lora_A.&lt;adapter&gt;.weight</c> shows up in <c>named_parameters()</c> / <c>state_dict()</c>
/// as soon as an adapter is added, as with PEFT's <c>nn.ModuleDict</c>.
/// </summary>
public sealed class AdapterModules : nn.Module
{
    private readonly Dictionary<string, nn.Module<Tensor, Tensor>> _modules = new(StringComparer.Ordinal);

    public AdapterModules() : base("ModuleDict") { }

    public IEnumerable<string> Names => _modules.Keys;

    public int Count => _modules.Count;

    public bool Contains(string name) => _modules.ContainsKey(name);

    public nn.Module<Tensor, Tensor> this[string name] =>
        _modules.TryGetValue(name, out var m) ? m : throw new KeyNotFoundException($"no LoRA adapter named '{name}' in this layer");

    public void Add(string name, nn.Module<Tensor, Tensor> module)
    {
        if (_modules.ContainsKey(name)) throw new InvalidOperationException($"adapter '{name}' already exists in this layer");
        register_module(name, module);
        _modules.Add(name, module);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            foreach (var m in _modules.Values) m.Dispose();
        base.Dispose(disposing);
    }
}
