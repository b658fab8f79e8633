using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Lora;

/// <summary>Model-wide adapter controls over every <see cref="LoraLayer"/> in a module tree (PEFT's model-level calls).</summary>
public static class LoraModel
{
    /// <summary>Every LoRA layer with its path, in <c>named_modules()</c> order.</summary>
    public static IEnumerable<(string Path, LoraLayer Layer)> Layers(nn.Module root)
    {
        ArgumentNullException.ThrowIfNull(root);
        foreach (var (name, module) in root.named_modules())
            if (module is LoraLayer layer) yield return (name, layer);
    }

    /// <summary>Adapter names present anywhere in the model, in first-seen order.</summary>
    public static IReadOnlyList<string> AdapterNames(nn.Module root)
    {
        var names = new List<string>();
        foreach (var (_, layer) in Layers(root))
            foreach (var a in layer.Adapters)
                if (!names.Contains(a)) names.Add(a);
        return names;
    }

    /// <summary>Activates <paramref name="names"/> with per-adapter <paramref name="weights"/> (default 1) on every LoRA layer.</summary>
    public static void SetAdapters(nn.Module root, IReadOnlyList<string> names, IReadOnlyList<double>? weights = null)
    {
        ArgumentNullException.ThrowIfNull(names);
        var known = AdapterNames(root);
        var unknown = names.Where(n => !known.Contains(n)).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"unknown LoRA adapter(s) {string.Join(", ", unknown)}; the model has {string.Join(", ", known)}", nameof(names));
        foreach (var (_, layer) in Layers(root)) layer.SetAdapters(names, weights);
    }

    public static void DisableAdapters(nn.Module root)
    {
        foreach (var (_, layer) in Layers(root)) layer.DisableAdapters();
    }

    public static void EnableAdapters(nn.Module root)
    {
        foreach (var (_, layer) in Layers(root)) layer.EnableAdapters();
    }

    /// <summary>Folds the active adapters into the base weights (faster inference; the set can still be changed later).</summary>
    public static void Merge(nn.Module root)
    {
        foreach (var (_, layer) in Layers(root)) layer.Merge();
    }

    public static void Unmerge(nn.Module root)
    {
        foreach (var (_, layer) in Layers(root)) layer.Unmerge();
    }
}
