namespace Dloral.Checkpoints;

/// <summary>A weights file that cannot be read: names the file and what is wrong with it.</summary>
public sealed class SafeTensorsException(string path, string problem)
    : Exception($"{path}: {problem}")
{
    public string FilePath { get; } = path;
    public string Problem { get; } = problem;
}
