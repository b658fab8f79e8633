using System.Reflection;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Dloral.Nn;

/// <summary>
/// Replaces a submodule in place (e.g. a Linear by a LoRA wrapper): the field or ModuleList slot that forward calls
/// through is reassigned AND the parent's registration is updated, so <c>state_dict()</c>, <c>parameters()</c> and
/// <c>to()</c> see the new module. TorchSharp's <c>register_module</c> refuses existing names, hence the registry edit.
/// </summary>
public static class ModuleSurgery
{
    private static readonly FieldInfo Registry = typeof(nn.Module).GetField("_internal_submodules", BindingFlags.NonPublic | BindingFlags.Instance)
        ?? throw new MissingFieldException("TorchSharp nn.Module._internal_submodules not found (TorchSharp version changed?)");

    /// <summary>Finds a submodule by its dotted state_dict path, e.g. "down_blocks.0.attentions.0.proj_in".</summary>
    public static nn.Module Get(nn.Module root, string path)
    {
        var named = root.named_modules().FirstOrDefault(m => m.name == path);
        return named.module ?? throw new ArgumentException($"no submodule '{path}' in {root.GetName()}");
    }

    /// <summary>
    /// Replaces the submodule at <paramref name="path"/> with <c>wrap(current)</c> and returns the replacement.
    /// </summary>
    public static nn.Module<Tensor, Tensor> Replace(nn.Module root, string path, Func<nn.Module<Tensor, Tensor>, nn.Module<Tensor, Tensor>> wrap)
    {
        int dot = path.LastIndexOf('.');
        var parent = dot < 0 ? root : Get(root, path[..dot]);
        string name = path[(dot + 1)..];
        var current = Get(root, path) as nn.Module<Tensor, Tensor>
            ?? throw new ArgumentException($"submodule '{path}' is not a Module<Tensor, Tensor>");
        var replacement = wrap(current);
        if (parent is TorchSharp.Modules.ModuleList<nn.Module<Tensor, Tensor>> list && int.TryParse(name, out int index))
        {
            list[index] = replacement;
        }
        else
        {
            var field = FindField(parent.GetType(), name)
                ?? throw new ArgumentException($"'{path}': {parent.GetType().Name} has no field '{name}' (cannot replace a slot of a {parent.GetType().Name})");
            if (!field.FieldType.IsAssignableFrom(replacement.GetType()))
                throw new ArgumentException($"'{path}': field type {field.FieldType.Name} cannot hold a {replacement.GetType().Name}; declare it as Module<Tensor, Tensor>");
            field.SetValue(parent, replacement);
        }
        var registry = (OrderedDict<string, nn.Module>)Registry.GetValue(parent)!;
        registry[name] = replacement;
        return replacement;
    }

    private static FieldInfo? FindField(Type? type, string name)
    {
        for (; type is not null; type = type.BaseType)
        {
            var f = type.GetField(name, BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly);
            if (f is not null) return f;
        }
        return null;
    }
}
