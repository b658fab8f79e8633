using System.Collections.Concurrent;

namespace Dloral.Training.ClipDatasets;

/// <summary>
/// The files of a clip dataset (one split of a folder, in a stable order) and the policy both datasets share:
/// a file that cannot be used is skipped with one warning, and the next usable file takes its place.
/// </summary>
internal sealed class DatasetFiles
{
    private readonly ConcurrentQueue<string> _warnings = new();
    private readonly ConcurrentDictionary<string, byte> _warned = new();
    private readonly string _dataset;
    private readonly string _kind;

    /// <summary>Lists <paramref name="folder"/> (recursively, by extension) and keeps the files of <paramref name="split"/>.
    /// <paramref name="dataset"/> ("Image clip dataset") and <paramref name="kind"/> ("image") name things in messages.</summary>
    public DatasetFiles(string dataset, string kind, string folder, string[] extensions, SplitPart split, double validationFraction)
    {
        _dataset = dataset;
        _kind = kind;
        var all = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Where(f => extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
            .OrderBy(f => f, StringComparer.Ordinal);
        Files = ValidationSplit.Select(all, split, validationFraction);
        if (Files.Count == 0)
            throw new InvalidDataException($"{dataset}: no {split} {kind}s ({string.Join(", ", extensions)}) in '{folder}'.");
    }

    public IReadOnlyList<string> Files { get; }

    public IReadOnlyList<string> Warnings => _warnings.ToArray();

    /// <summary>Raised for every skipped file (once per file).</summary>
    public event Action<string>? Warning;

    /// <summary>The sample of file <paramref name="index"/>, or of the next file that <paramref name="tryMake"/> can use.</summary>
    public ClipSample FirstUsable(int index, Func<int, (ClipSample? Sample, string? Error)> tryMake)
    {
        for (int attempt = 0; attempt < Files.Count; attempt++)
        {
            int i = (index + attempt) % Files.Count;
            var (sample, error) = tryMake(i);
            if (sample is not null) return sample;
            if (!_warned.TryAdd(Files[i], 0)) continue;
            string msg = $"skipped {_kind} '{Files[i]}': {error}";
            _warnings.Enqueue(msg);
            Warning?.Invoke(msg);
        }
        throw new InvalidDataException($"{_dataset}: none of the {Files.Count} {_kind}s could be used (see warnings).");
    }
}
