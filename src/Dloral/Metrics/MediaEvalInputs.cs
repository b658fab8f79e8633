using Dloral.Media;
using static TorchSharp.torch;

namespace Dloral.Metrics;

/// <summary>Opens videos, images and image folders (through Dloral.Media) as <see cref="EvalInput"/>s.</summary>
public sealed class MediaEvalInputs : IDisposable
{
    private readonly List<IFrameSource> _sources = [];

    /// <summary>
    /// Probes <paramref name="path"/> now (so unreadable inputs fail before any work) and returns an input whose
    /// frames are decoded lazily as float [3,H,W] in [0,1]. Throws <see cref="MediaException"/> for bad input.
    /// </summary>
    public EvalInput Open(string path, string? name = null, FrameSourceOptions? options = null)
    {
        var source = FrameSource.Open(path, options);
        _sources.Add(source);
        string display = name ?? System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(path));
        return new EvalInput(display, path, () => Frames(source), source.ExpectedFrames);
    }

    private static IEnumerable<Tensor> Frames(IFrameSource source)
    {
        foreach (var frame in source) yield return FrameTensors.ToTensor(frame);
    }

    public void Dispose()
    {
        foreach (var s in _sources) s.Dispose();
        _sources.Clear();
    }
}
