using System.Globalization;
using Dloral.Pipeline;
using Dloral.Pipeline.Compact;
using TorchSharp;

namespace Dloral.Checkpoints;

/// <summary>Where a model comes from.</summary>
public enum ModelOrigin
{
    /// <summary>Implemented in code, no weights (the classical baselines).</summary>
    BuiltIn,
    /// <summary>A weights file shipped with dloral (the models/ folder beside the program or in the repository).</summary>
    Shipped,
    /// <summary>A weights file in the user's model folder ($DLORAL_MODELS or ~/.local/share/dloral/models).</summary>
    User,
}

/// <summary>One model <c>dloral upscale --model</c> can name.</summary>
/// <param name="Name">What to pass to --model.</param>
/// <param name="Origin">Built in, shipped or user file.</param>
/// <param name="Description">One line for <c>dloral models</c>.</param>
/// <param name="Path">The weights file, for file models.</param>
/// <param name="Scales">Scales the model supports.</param>
/// <param name="Loadable">False when the file is listed but no loader for its format is registered yet.</param>
public sealed record ModelEntry(string Name, ModelOrigin Origin, string Description, string? Path, IReadOnlyList<int> Scales, bool Loadable);

/// <summary>Creates an upscaler from a model file for a scale on a device.</summary>
public delegate IUpscaler ModelFileLoader(string path, int scale, torch.Device device);

/// <summary>
/// The models <c>--model</c> accepts: the built-in baselines, files shipped under models/, and the
/// user's model folder; a path to a model file is also accepted. Learned models plug in by
/// registering a loader for their file extension (<see cref="RegisterLoader"/>).
/// </summary>
public sealed class ModelCatalog
{
    private static readonly Dictionary<string, ModelFileLoader> Loaders = new(StringComparer.OrdinalIgnoreCase);
    private static readonly string[] ModelExtensions = [".safetensors", ".pkl", ".pt", ".pth"];
    private readonly IReadOnlyList<string> _shippedDirs;
    private readonly string? _userDir;

    public ModelCatalog(IReadOnlyList<string>? shippedDirs = null, string? userDir = null)
    {
        _shippedDirs = shippedDirs ?? DefaultShippedDirs();
        _userDir = userDir ?? DefaultUserDir();
    }

    /// <summary>The catalog with the default folders.</summary>
    public static ModelCatalog Default => new();

    /// <summary>Folders searched for shipped models.</summary>
    public IReadOnlyList<string> ShippedDirectories => _shippedDirs;

    /// <summary>The user's model folder (may not exist).</summary>
    public string? UserDirectory => _userDir;

    /// <summary>Registers how to load model files ending in <paramref name="extension"/> (e.g. ".safetensors"). Process-wide.</summary>
    public static void RegisterLoader(string extension, ModelFileLoader loader)
    {
        lock (Loaders) Loaders[extension.StartsWith('.') ? extension : "." + extension] = loader;
    }

    private static ModelFileLoader? LoaderFor(string path)
    {
        lock (Loaders) return Loaders.GetValueOrDefault(System.IO.Path.GetExtension(path));
    }

    /// <summary>Built-in models first, then shipped files, then user files.</summary>
    public IReadOnlyList<ModelEntry> Entries
    {
        get
        {
            var list = new List<ModelEntry>
            {
                new("bicubic", ModelOrigin.BuiltIn, "Bicubic interpolation (PyTorch kernel, a = -0.75); the default when the compact DLoRAL weights are not found", null, [1, 2, 3, 4], true),
                new("lanczos", ModelOrigin.BuiltIn, "Lanczos-3 interpolation (separable, Pillow's tap weights)", null, [1, 2, 3, 4], true),
                new("identity", ModelOrigin.BuiltIn, "Passes frames through unchanged (--scale 1 only); measures the pipeline's own cost", null, [1], true),
            };
            var compact = CompactEntry();
            list.Add(compact);
            // A user-folder compact.safetensors is the compact entry itself, not a second model of the same name.
            bool Other(ModelEntry e) => !string.Equals(e.Name, CompactModelFile.Name, StringComparison.OrdinalIgnoreCase) && e.Path != compact.Path;
            foreach (var dir in _shippedDirs) list.AddRange(FilesIn(dir, ModelOrigin.Shipped).Where(Other));
            if (_userDir is not null) list.AddRange(FilesIn(_userDir, ModelOrigin.User).Where(Other));
            return list;
        }
    }

    /// <summary>The compact DLoRAL model, found or not (then not loadable, and its description says where it was looked for).</summary>
    private ModelEntry CompactEntry()
    {
        var location = CompactModelFile.Locate(this);
        const string what = "Compact DLoRAL video model (pixel-unshuffle latents, x4 only; the default when found)";
        if (location.Path is not { } path)
            return new ModelEntry(CompactModelFile.Name, ModelOrigin.Shipped, $"{what}: not found (looked in: {string.Join(", ", location.Searched)})", null, [4], false);
        bool user = _userDir is not null && path.StartsWith(System.IO.Path.GetFullPath(_userDir), StringComparison.Ordinal);
        double mb = new FileInfo(path).Length / 1e6;
        return new ModelEntry(CompactModelFile.Name, user ? ModelOrigin.User : ModelOrigin.Shipped,
                              string.Create(CultureInfo.InvariantCulture, $"{what}: found, {mb:F1} MB"), path, [4], true);
    }

    private static IEnumerable<ModelEntry> FilesIn(string dir, ModelOrigin origin)
    {
        if (!Directory.Exists(dir)) yield break;
        foreach (var file in Directory.EnumerateFiles(dir).Where(IsModelFile).Order(StringComparer.Ordinal))
        {
            bool loadable = LoaderFor(file) is not null;
            yield return new ModelEntry(System.IO.Path.GetFileNameWithoutExtension(file), origin,
                loadable ? "model file" : "model file (no loader for this format yet)", file, [4], loadable);
        }
    }

    private static bool IsModelFile(string path) =>
        ModelExtensions.Contains(System.IO.Path.GetExtension(path), StringComparer.OrdinalIgnoreCase) || LoaderFor(path) is not null;

    /// <summary>Finds a model by name (case-insensitive) or by file path. Throws <see cref="UpscaleOptionsException"/> naming what was asked for.</summary>
    public ModelEntry Resolve(string nameOrPath)
    {
        if (string.IsNullOrWhiteSpace(nameOrPath)) throw new UpscaleOptionsException("model name is empty", "model");
        var byName = Entries.FirstOrDefault(e => string.Equals(e.Name, nameOrPath, StringComparison.OrdinalIgnoreCase));
        if (byName is not null) return byName;
        bool looksLikePath = nameOrPath.Contains('/') || nameOrPath.Contains('\\') || System.IO.Path.HasExtension(nameOrPath);
        if (looksLikePath)
        {
            var full = System.IO.Path.GetFullPath(nameOrPath);
            if (!File.Exists(full)) throw new UpscaleOptionsException($"model file not found: {nameOrPath}", "model");
            bool loadable = LoaderFor(full) is not null;
            return new ModelEntry(System.IO.Path.GetFileNameWithoutExtension(full), ModelOrigin.User, "model file", full, [4], loadable);
        }
        var names = string.Join(", ", Entries.Select(e => e.Name));
        throw new UpscaleOptionsException($"unknown model '{nameOrPath}' (available: {names}; or give a model file path)", "model");
    }

    /// <summary>Creates the upscaler for <paramref name="nameOrPath"/> at <paramref name="scale"/> on <paramref name="device"/>.</summary>
    public IUpscaler Create(string nameOrPath, int scale, torch.Device device)
    {
        var entry = Resolve(nameOrPath);
        if (!entry.Scales.Contains(scale))
            throw new UpscaleOptionsException($"model '{entry.Name}' supports --scale {string.Join("|", entry.Scales)}, not {scale}", "scale");
        if (entry.Origin == ModelOrigin.BuiltIn)
        {
            return entry.Name switch
            {
                "bicubic" => new BicubicUpscaler(scale),
                "lanczos" => new LanczosUpscaler(scale),
                "identity" => new IdentityUpscaler(),
                _ => throw new InvalidOperationException($"built-in model '{entry.Name}' has no factory"),
            };
        }
        if (entry.Path is null)
            throw new UpscaleOptionsException(entry.Name == CompactModelFile.Name
                ? "--model compact: " + CompactModelFile.Locate(this).NotFoundMessage
                : $"model '{entry.Name}' has no weights file", "model");
        var loader = LoaderFor(entry.Path)
            ?? throw new UpscaleOptionsException($"model file {entry.Path}: no loader for '{System.IO.Path.GetExtension(entry.Path)}' files yet (learned models are not wired into the pipeline yet)", "model");
        return loader(entry.Path, scale, device);
    }

    private static string[] DefaultShippedDirs()
    {
        var dirs = new List<string> { System.IO.Path.Combine(AppContext.BaseDirectory, "models") };
        // Running from a build tree: the repository's models/ folder (the one holding Dloral.slnx).
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(d.FullName, "Dloral.slnx")))
            {
                dirs.Add(System.IO.Path.Combine(d.FullName, "models"));
                break;
            }
        }
        return dirs.Distinct().ToArray();
    }

    private static string DefaultUserDir()
    {
        var env = Environment.GetEnvironmentVariable("DLORAL_MODELS");
        if (!string.IsNullOrEmpty(env)) return env;
        var data = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        if (string.IsNullOrEmpty(data))
            data = System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
        return System.IO.Path.Combine(data, "dloral", "models");
    }
}
