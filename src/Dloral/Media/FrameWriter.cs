namespace Dloral.Media;

/// <summary>
/// Streams raw RGB frames into ffmpeg's stdin. Writes to a temporary file (or folder) beside the destination and
/// renames it at <see cref="Complete"/>; removes it on failure, cancellation or Dispose without Complete.
/// </summary>
public sealed class FrameWriter : IFrameSink
{
    private FrameWriter() => throw new NotImplementedException();

    /// <summary>
    /// Validates the destination (see <see cref="OutputFile.Validate"/>) and prepares the writer. ffmpeg starts at
    /// the first frame, whose size and depth fix the output's.
    /// </summary>
    public static FrameWriter Open(string outputPath, FrameWriterOptions? options = null) => throw new NotImplementedException();

    public string OutputPath => throw new NotImplementedException();
    public OutputKind Kind => throw new NotImplementedException();
    public long FramesWritten => throw new NotImplementedException();
    public IReadOnlyList<string> Warnings => throw new NotImplementedException();
    public void Write(VideoFrame frame) => throw new NotImplementedException();
    public void Complete() => throw new NotImplementedException();
    public void Dispose() => throw new NotImplementedException();
}
