using System.Text;

namespace Dloral.Training.ClipDatasets;

/// <summary>Which part of a folder a dataset reads.</summary>
public enum SplitPart
{
    Train,
    Validation,
    All,
}

/// <summary>
/// A deterministic train / validation split by a hash of the file name (not the path, so it is the
/// same on every machine and after moving the folder): a file is in validation when its FNV-1a
/// hash falls below the fraction. Adding files never moves an existing file between the parts.
/// </summary>
public static class ValidationSplit
{
    public static bool IsValidation(string path, double fraction)
    {
        if (fraction <= 0) return false;
        if (fraction >= 1) return true;
        string name = Path.GetFileName(path);
        ulong h = 14695981039346656037UL;
        foreach (byte b in Encoding.UTF8.GetBytes(name))
        {
            h ^= b;
            h *= 1099511628211UL;
        }
        // final avalanche so that similar names spread uniformly
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdUL;
        h ^= h >> 33;
        return (h % 1_000_000UL) < (ulong)(fraction * 1_000_000);
    }

    public static IReadOnlyList<string> Select(IEnumerable<string> files, SplitPart part, double fraction) => part switch
    {
        SplitPart.All => files.ToList(),
        SplitPart.Validation => files.Where(f => IsValidation(f, fraction)).ToList(),
        _ => files.Where(f => !IsValidation(f, fraction)).ToList(),
    };
}
