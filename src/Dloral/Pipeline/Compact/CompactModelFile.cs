using Dloral.Checkpoints;

namespace Dloral.Pipeline.Compact;

/// <summary>Where the compact model's weights were looked for, and the file found (null when none).</summary>
/// <param name="Path">The weights file, or null.</param>
/// <param name="Searched">Every path looked at, in order (for the "not found" message).</param>
public sealed record CompactModelLocation(string? Path, IReadOnlyList<string> Searched)
{
    /// <summary>True when the weights were found.</summary>
    public bool Found => Path is not null;

    /// <summary>One line naming where the weights were looked for.</summary>
    public string NotFoundMessage =>
        $"the compact DLoRAL weights ({CompactDloral.WeightsFileName}) were not found; looked in: {string.Join(", ", Searched)}" +
        $" (set {CompactModelFile.EnvironmentVariable} to the file)";
}

/// <summary>
/// Finds and recognises the compact DLoRAL weights file (written by <see cref="CompactDloral.Save"/>): what
/// <c>dloral upscale --model compact</c> loads, and its default model when present.
/// </summary>
public static class CompactModelFile
{
    /// <summary>Environment variable that overrides the weights path (only that file is then looked at).</summary>
    public const string EnvironmentVariable = "DLORAL_COMPACT_MODEL";

    /// <summary>The model name <c>--model</c> and <c>dloral models</c> use.</summary>
    public const string Name = "compact";

    /// <summary>
    /// True when <paramref name="path"/> is a safetensors file whose metadata says it is a compact DLoRAL model
    /// (<c>dloral.format = dloral-compact/1</c>); converted SD files (<see cref="DloralModelFile.IsDloralFile"/>) are not.
    /// </summary>
    public static bool IsCompactFile(string path)
    {
        if (!File.Exists(path) || !path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) return false;
        try
        {
            using var f = SafeTensorsFile.Open(path);
            return f.Metadata.TryGetValue(CompactDloral.MetaFormat, out var fmt) && fmt == CompactDloralConfig.Format;
        }
        catch (SafeTensorsException)
        {
            return false;
        }
    }

    /// <summary>The scale a compact weights file upscales by (from its metadata, without reading the weights).</summary>
    /// <exception cref="InvalidDataException">Not a compact weights file.</exception>
    public static int ScaleOf(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        var meta = file.Metadata;
        if (meta.GetValueOrDefault(CompactDloral.MetaFormat) != CompactDloralConfig.Format || !meta.TryGetValue(CompactDloral.MetaCompact, out var compact)
            || !meta.TryGetValue(CompactDloral.MetaUnet, out var unet))
            throw new InvalidDataException($"{path}: not a compact DLoRAL weights file (metadata {CompactDloral.MetaFormat} is not '{CompactDloralConfig.Format}')");
        return CompactDloralConfig.Parse(compact, unet, path).Scale;
    }

    /// <summary>
    /// The candidate paths in search order: only <paramref name="overridePath"/> when given (the environment variable);
    /// otherwise models/compact/ found upward from the program (the repository's when run from a build), each shipped
    /// model folder's compact/, then compact.safetensors and dloral_compact.safetensors in the user model folder.
    /// </summary>
    public static IReadOnlyList<string> SearchPaths(string? overridePath, string? modelFolder, IReadOnlyList<string> shippedDirs, string? userDir)
    {
        ArgumentNullException.ThrowIfNull(shippedDirs);
        if (!string.IsNullOrEmpty(overridePath)) return [Path.GetFullPath(overridePath)];
        var paths = new List<string>();
        if (modelFolder is not null) paths.Add(Path.Combine(modelFolder, CompactDloral.WeightsFileName));
        paths.AddRange(shippedDirs.Select(d => Path.Combine(d, Name, CompactDloral.WeightsFileName)));
        if (userDir is not null)
        {
            paths.Add(Path.Combine(userDir, Name + ".safetensors"));
            paths.Add(Path.Combine(userDir, CompactDloral.WeightsFileName));
        }
        return paths.Select(Path.GetFullPath).Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>Looks for the weights with the environment override and <paramref name="catalog"/>'s folders (default catalog when null).</summary>
    public static CompactModelLocation Locate(ModelCatalog? catalog = null)
    {
        catalog ??= ModelCatalog.Default;
        var searched = SearchPaths(Environment.GetEnvironmentVariable(EnvironmentVariable), CompactDloral.FindModelFolder(),
                                   catalog.ShippedDirectories, catalog.UserDirectory);
        return new CompactModelLocation(searched.FirstOrDefault(File.Exists), searched);
    }
}
