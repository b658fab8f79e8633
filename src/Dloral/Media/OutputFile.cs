namespace Dloral.Media;

/// <summary>Output path rules: what kind an output is, and the safety checks made before anything is written.</summary>
public static class OutputFile
{
    /// <summary>.mp4/.mkv/.mov → video; .png/.jpg/.jpeg → single image; an existing folder, a trailing '/' or no extension → folder of PNG frames.</summary>
    public static OutputKind KindOf(string outputPath) => throw new NotImplementedException();

    /// <summary>
    /// Throws <see cref="MediaException"/> when the output equals the input (also through symlinks and hard links),
    /// exists without <paramref name="overwrite"/>, or its folder cannot be written.
    /// </summary>
    public static void Validate(string outputPath, string? inputPath, bool overwrite) => throw new NotImplementedException();
}
