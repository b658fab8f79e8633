namespace Dloral.Media;

/// <summary>
/// Receives frames and produces an output file or folder. Nothing appears at the destination until
/// <see cref="Complete"/> succeeds; disposing without Complete (failure, cancellation) removes the partial output.
/// </summary>
public interface IFrameSink : IDisposable
{
    /// <summary>The final output path.</summary>
    string OutputPath { get; }

    OutputKind Kind { get; }

    /// <summary>Writes one frame. All frames must have the size and depth of the first.</summary>
    void Write(VideoFrame frame);

    /// <summary>Finishes encoding and moves the result into place. Throws <see cref="MediaException"/> when ffmpeg failed.</summary>
    void Complete();

    long FramesWritten { get; }

    IReadOnlyList<string> Warnings { get; }
}
