namespace Dloral.Checkpoints;

/// <summary>A PyTorch checkpoint (torch.save zip / pickle) that cannot be read: names the file and the problem.</summary>
public class CheckpointFormatException(string path, string problem, Exception? inner = null)
    : IOException($"{path}: {problem}", inner)
{
    public string FilePath { get; } = path;
    public string Problem { get; } = problem;
}

/// <summary>
/// A pickle that asks for a global outside the allow-list (e.g. <c>os.system</c>, <c>builtins.eval</c>).
/// Nothing from the pickle has been executed when this is thrown: our unpickler never calls Python
/// code, and refuses the global as soon as it is named.
/// </summary>
public sealed class UnsafePickleException(string path, string module, string name, string opcode)
    : CheckpointFormatException(path,
        $"refusing to load: the pickle references the global '{module}.{name}' ({opcode}), which is not on the allow-list of " +
        "tensor-checkpoint globals. A pickle can run arbitrary code through such globals; nothing was executed. " +
        "If this file is trusted, convert it to safetensors with PyTorch.")
{
    public string Module { get; } = module;
    public string Name { get; } = name;
    /// <summary>"module.name", e.g. "os.system".</summary>
    public string Global => $"{Module}.{Name}";
}
