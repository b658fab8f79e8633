using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Lora;

/// <summary>
/// Injects LoRA adapters into a module tree by module path, as PEFT's <c>add_adapter</c> with an explicit
/// <c>target_modules</c> list does: each target Linear/Conv2d is replaced in its parent by a
/// <see cref="LoraLinear"/>/<see cref="LoraConv2d"/> (once), then the adapter is added to it.
/// </summary>
public static class AdapterInjector
{
    /// <summary>Wraps the Linear/Conv2d at <paramref name="path"/> (no-op if already wrapped) and returns the wrapper.</summary>
    public static LoraLayer Wrap(nn.Module root, string path)
    {
        var target = ModuleTree.Get(root, path);
        switch (target)
        {
            case LoraLayer existing:
                return existing;
            case Linear linear:
            {
                var wrapper = new LoraLinear(linear);
                ModuleTree.Replace(root, path, wrapper);
                return wrapper;
            }
            case Conv2d conv:
            {
                var wrapper = new LoraConv2d(conv);
                ModuleTree.Replace(root, path, wrapper);
                return wrapper;
            }
            default:
                throw new NotSupportedException($"LoRA target '{path}' is a {target.GetType().Name}; only Linear and Conv2d are supported");
        }
    }

    /// <summary>
    /// Adds adapter <paramref name="adapter"/> to every module in <paramref name="paths"/> (A ~ N(0,(1/r)²) drawn in
    /// list order from <paramref name="generator"/>, B = 0). Like diffusers' <c>add_adapter</c>, the new adapter then
    /// becomes the only active one on every LoRA layer of the model.
    /// </summary>
    public static void AddAdapter(nn.Module root, string adapter, IEnumerable<string> paths, LoraAdapterConfig config, Generator? generator = null,
                                  bool activate = true)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var path in paths)
        {
            if (!seen.Add(path)) continue;
            Wrap(root, path).AddAdapter(adapter, config, generator);
        }
        if (seen.Count == 0) throw new ArgumentException($"adapter '{adapter}' has no target modules", nameof(paths));
        if (activate) LoraModel.SetAdapters(root, [adapter]);
    }
}
