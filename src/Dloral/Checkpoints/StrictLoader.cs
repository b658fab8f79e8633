using System.Text;
using static TorchSharp.torch;

namespace Dloral.Checkpoints;

/// <summary>
/// Copies named weights into a module's parameters and persistent buffers in place, strictly:
/// every missing name, unexpected name and shape mismatch is collected and reported in one error
/// before anything is copied (never a silently half-loaded or zero tensor).
/// </summary>
public static class StrictLoader
{
    /// <summary>Loads <paramref name="source"/> into <paramref name="module"/>.</summary>
    /// <param name="module">Its <c>state_dict()</c> names (parameters and persistent buffers) are the expected keys.</param>
    /// <param name="source">Where the tensors come from.</param>
    /// <param name="optional">Module names that may be absent from the source (they keep their
    /// constructed values), e.g. the CLIP <c>position_ids</c> buffer newer transformers no longer save.</param>
    /// <param name="ignoreUnexpected">Source names that are allowed but not used.</param>
    public static void Load(nn.Module module, IWeightSource source, IEnumerable<string>? optional = null, Func<string, bool>? ignoreUnexpected = null)
    {
        var expected = module.state_dict();
        var optionalSet = new HashSet<string>(optional ?? [], StringComparer.Ordinal);
        var missing = expected.Keys.Where(k => !source.Contains(k) && !optionalSet.Contains(k)).ToList();
        var unexpected = source.Names.Where(n => !expected.ContainsKey(n) && !(ignoreUnexpected?.Invoke(n) ?? false)).ToList();
        var mismatched = new List<string>();
        foreach (var (name, t) in expected)
        {
            if (!source.Contains(name))
                continue;
            var found = source.ShapeOf(name);
            if (!found.SequenceEqual(t.shape))
                mismatched.Add($"{name}: expected [{string.Join(",", t.shape)}], found [{string.Join(",", found)}]");
        }
        if (missing.Count + unexpected.Count + mismatched.Count > 0)
            throw new InvalidDataException(Describe(source.Description, module.GetName(), missing, unexpected, mismatched));

        using var noGrad = no_grad();
        foreach (var (name, t) in expected)
            if (source.Contains(name))
                source.ReadInto(name, t);
    }

    private static string Describe(string source, string moduleName, List<string> missing, List<string> unexpected, List<string> mismatched)
    {
        const int show = 20;
        var sb = new StringBuilder($"{source}: weights do not fit {moduleName}");
        void Section(string title, List<string> items)
        {
            if (items.Count == 0)
                return;
            sb.Append($"\n  {title} ({items.Count}):");
            foreach (var i in items.Take(show))
                sb.Append("\n    ").Append(i);
            if (items.Count > show)
                sb.Append($"\n    ... and {items.Count - show} more");
        }
        Section("missing keys", missing);
        Section("unexpected keys", unexpected);
        Section("shape mismatches", mismatched);
        return sb.ToString();
    }
}
