namespace Dloral.Media;

/// <summary>
/// A media file that cannot be read or written: the message names the file and the cause,
/// e.g. "in.mp4: not a video ffmpeg can read (Invalid data found when processing input)".
/// The CLI maps it to exit code 2 (bad input).
/// </summary>
public sealed class MediaException : Exception
{
    public MediaException(string path, string cause, Exception? inner = null)
        : base($"{path}: {cause}", inner)
    {
        FilePath = path;
        Cause = cause;
    }

    /// <summary>The file or folder the problem is about (as the user named it).</summary>
    public string FilePath { get; }

    /// <summary>What is wrong, without the path.</summary>
    public string Cause { get; }
}
