using System.Globalization;
using System.Reflection;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Lora;

/// <summary>
/// Finds and replaces submodules by their dot-separated state_dict path (<c>down_blocks.0.attentions.0.proj_in</c>).
/// Replacement swaps the parent's field (or list slot) that holds the child and the parent's registration under
/// the same name and position, so <c>forward</c> calls the new module and <c>named_parameters()</c> keeps its order.
/// </summary>
public static class ModuleTree
{
    private static readonly FieldInfo SubmodulesField =
        typeof(nn.Module).GetField("_internal_submodules", BindingFlags.Instance | BindingFlags.NonPublic)
        ?? throw new MissingFieldException("TorchSharp nn.Module has no _internal_submodules field: this TorchSharp version is not supported by ModuleTree");

    /// <summary>The direct child registered under <paramref name="name"/>, or null.</summary>
    public static nn.Module? Child(nn.Module parent, string name)
    {
        ArgumentNullException.ThrowIfNull(parent);
        foreach (var (n, m) in parent.named_children())
            if (n == name) return m;
        return null;
    }

    /// <summary>The module at <paramref name="path"/> ("" = root); throws naming the first missing segment.</summary>
    public static nn.Module Get(nn.Module root, string path)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(path);
        if (path.Length == 0) return root;
        var current = root;
        var segments = path.Split('.');
        for (int i = 0; i < segments.Length; i++)
        {
            current = Child(current, segments[i])
                ?? throw new KeyNotFoundException($"module path '{path}': '{string.Join('.', segments[..(i + 1)])}' does not exist " +
                                                  $"(children of '{string.Join('.', segments[..i])}': {string.Join(", ", current.named_children().Select(c => c.name))})");
        }
        return current;
    }

    /// <summary>Replaces the module at <paramref name="path"/> by <paramref name="replacement"/> in its parent; returns the old module.</summary>
    public static nn.Module Replace(nn.Module root, string path, nn.Module replacement)
    {
        ArgumentNullException.ThrowIfNull(replacement);
        int dot = path.LastIndexOf('.');
        var parent = dot < 0 ? root : Get(root, path[..dot]);
        string name = dot < 0 ? path : path[(dot + 1)..];
        var old = Child(parent, name) ?? throw new KeyNotFoundException($"module path '{path}' does not exist");

        if (!ReplaceHolder(parent, name, old, replacement))
            throw new InvalidOperationException(
                $"cannot replace '{path}': its parent {parent.GetType().Name} holds it in no field or list slot of a type that accepts {replacement.GetType().Name}");

        var registry = SubmodulesField.GetValue(parent) as IDictionary<string, nn.Module>
            ?? throw new InvalidOperationException("TorchSharp nn.Module._internal_submodules is not an IDictionary<string, Module>");
        registry[name] = replacement; // OrderedDict's indexer keeps the position, so state_dict order is unchanged
        return old;
    }

    private static bool ReplaceHolder(nn.Module parent, string name, nn.Module old, nn.Module replacement)
    {
        // A field named like the child (the diffusers convention), else any field holding that exact instance.
        FieldInfo? byName = null, byRef = null;
        for (var t = parent.GetType(); t is not null && t != typeof(object); t = t.BaseType)
        {
            foreach (var f in t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                if (!typeof(nn.Module).IsAssignableFrom(f.FieldType) && !f.FieldType.IsAssignableFrom(old.GetType())) continue;
                if (!ReferenceEquals(f.GetValue(parent), old)) continue;
                if (f.Name == name) byName ??= f;
                else byRef ??= f;
            }
        }
        bool replaced = false;
        foreach (var f in new[] { byName, byRef })
        {
            if (f is null) continue;
            if (!f.FieldType.IsInstanceOfType(replacement))
                throw new InvalidOperationException($"field {parent.GetType().Name}.{f.Name} is declared {f.FieldType.Name}, which cannot hold a {replacement.GetType().Name}");
            f.SetValue(parent, replacement);
            replaced = true;
        }
        if (replaced) return true;

        // ModuleList / ModuleList<T> (and anything list-like): the slot at the index.
        if (int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out int index))
        {
            var indexer = parent.GetType().GetProperties(BindingFlags.Instance | BindingFlags.Public)
                .FirstOrDefault(p => p.CanWrite && p.GetIndexParameters() is [{ ParameterType: var pt }] && pt == typeof(int)
                                     && p.PropertyType.IsInstanceOfType(replacement) && typeof(nn.Module).IsAssignableFrom(p.PropertyType));
            if (indexer is not null && ReferenceEquals(indexer.GetValue(parent, [index]), old))
            {
                indexer.SetValue(parent, replacement, [index]);
                return true;
            }
        }
        return false;
    }
}
