using System.Runtime.InteropServices;

namespace Dloral.Media;

/// <summary>Output path rules: what kind an output is, and the safety checks made before anything is written.</summary>
public static class OutputFile
{
    public static IReadOnlySet<string> VideoExtensions { get; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { ".mp4", ".mkv", ".mov" };
    public static IReadOnlySet<string> ImageExtensions { get; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg" };

    /// <summary>Name of frame <paramref name="number"/> (1-based) in a folder output: frame_000001.png.</summary>
    public static string FrameFileName(long number) => $"frame_{number:D6}.png";

    /// <summary>
    /// .mp4/.mkv/.mov → video; .png/.jpg/.jpeg → single image; an existing folder, a trailing '/' or no extension →
    /// folder of PNG frames. Any other extension is a <see cref="MediaException"/>.
    /// </summary>
    public static OutputKind KindOf(string outputPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        if (outputPath.EndsWith(Path.DirectorySeparatorChar) || outputPath.EndsWith(Path.AltDirectorySeparatorChar) || Directory.Exists(outputPath))
            return OutputKind.ImageFolder;
        string ext = Path.GetExtension(outputPath);
        if (VideoExtensions.Contains(ext)) return OutputKind.Video;
        if (ImageExtensions.Contains(ext)) return OutputKind.Image;
        if (ext.Length == 0) return OutputKind.ImageFolder;
        throw new MediaException(outputPath,
            $"unknown output type '{ext}' (use .mp4, .mkv or .mov for video, .png or .jpg for one image, or a folder for PNG frames)");
    }

    /// <summary>
    /// Throws <see cref="MediaException"/> when the output is the input (also through symlinks and hard links),
    /// exists without <paramref name="overwrite"/>, or is a folder/file where the other is expected.
    /// </summary>
    public static void Validate(string outputPath, string? inputPath, bool overwrite)
    {
        var kind = KindOf(outputPath);
        string full = Path.GetFullPath(outputPath);
        if (inputPath is not null && IsSameFile(inputPath, full))
            throw new MediaException(outputPath, "is the input itself: writing it would destroy the input; choose another output path");
        if (kind == OutputKind.ImageFolder)
        {
            if (File.Exists(full.TrimEnd(Path.DirectorySeparatorChar)))
                throw new MediaException(outputPath, "is a file, but a folder output (PNG frames) was asked for");
            if (Directory.Exists(full) && Directory.EnumerateFileSystemEntries(full).Any())
            {
                if (!overwrite)
                    throw new MediaException(outputPath, "already exists and is not empty (use --overwrite to replace it)");
                var foreign = Directory.EnumerateFileSystemEntries(full)
                    .FirstOrDefault(e => !(File.Exists(e) && IsFrameFileName(Path.GetFileName(e))));
                if (foreign is not null)
                    throw new MediaException(outputPath,
                        $"holds other files than frame_NNNNNN.png (e.g. {Path.GetFileName(foreign)}): not replaced even with --overwrite; remove it yourself");
            }
        }
        else
        {
            if (Directory.Exists(full))
                throw new MediaException(outputPath, "is a folder, but a file output was asked for");
            if (File.Exists(full) && !overwrite)
                throw new MediaException(outputPath, "already exists (use --overwrite to replace it)");
        }
    }

    internal static bool IsFrameFileName(string name) =>
        name.StartsWith("frame_", StringComparison.Ordinal) && name.EndsWith(".png", StringComparison.OrdinalIgnoreCase)
        && name.AsSpan(6, name.Length - 10).ToString().All(char.IsAsciiDigit);

    /// <summary>True when both paths name the same file or folder: same canonical path (symlinks resolved) or same device+inode (hard links).</summary>
    public static bool IsSameFile(string a, string b)
    {
        string ca = Canonical(a), cb = Canonical(b);
        if (string.Equals(ca, cb, StringComparison.Ordinal)) return true;
        return FileId(ca) is { } ia && FileId(cb) is { } ib && ia == ib;
    }

    /// <summary>Full path with every symlink resolved; for a path that does not exist yet, its existing ancestor is resolved.</summary>
    internal static string Canonical(string path)
    {
        string full = Path.GetFullPath(path).TrimEnd(Path.DirectorySeparatorChar);
        if (full.Length == 0) return "/";
        string? real = RealPath(full);
        if (real is not null) return real;
        string? parent = Path.GetDirectoryName(full);
        return parent is null ? full : Path.Combine(Canonical(parent), Path.GetFileName(full));
    }

    private static string? RealPath(string path)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
            return File.Exists(path) || Directory.Exists(path) ? path : null;
        IntPtr p = realpath(path, IntPtr.Zero);
        if (p == IntPtr.Zero) return null;
        try { return Marshal.PtrToStringUTF8(p); }
        finally { free(p); }
    }

    private static (ulong Device, ulong Inode)? FileId(string path)
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64)) return null;
        // struct stat on 64-bit Linux begins with st_dev (8 bytes) then st_ino (8 bytes); 256 bytes covers the rest.
        var buffer = new byte[256];
        try
        {
            if (stat(path, buffer) != 0) return null;
        }
        catch (EntryPointNotFoundException) { return null; }
        catch (DllNotFoundException) { return null; }
        return (BitConverter.ToUInt64(buffer, 0), BitConverter.ToUInt64(buffer, 8));
    }

    [DllImport("libc", SetLastError = true)]
    private static extern IntPtr realpath([MarshalAs(UnmanagedType.LPUTF8Str)] string path, IntPtr resolved);

    [DllImport("libc")]
    private static extern void free(IntPtr p);

    [DllImport("libc", SetLastError = true)]
    private static extern int stat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] buf);
}
