using Dloral.Media;
using Dloral.Tests.Support;

namespace Dloral.Tests.Media;

/// <summary>Every bad input or output gives a <see cref="MediaException"/> naming the file and the cause, and leaves nothing behind.</summary>
public sealed class BadInputTests : IDisposable
{
    private readonly TestMedia _media = new();

    public void Dispose() => _media.Dispose();

    private string[] Entries() => Directory.GetFileSystemEntries(_media.Dir).Select(Path.GetFileName).Order().ToArray()!;

    /// <summary>Reads everything and writes it, as the CLI does; the writer is disposed whatever happens.</summary>
    private static void Convert(string input, string output, bool overwrite = false, CancellationToken ct = default)
    {
        using var source = FrameSource.Open(input, new FrameSourceOptions { CancellationToken = ct });
        using var writer = FrameWriter.Open(output, FrameWriterOptions.MatchSource(source) with { Overwrite = overwrite, CancellationToken = ct });
        foreach (var frame in source) writer.Write(frame);
        writer.Complete();
    }

    [Fact]
    public void Missing_file()
    {
        string path = _media.PathOf("nope.mp4");

        var ex = Assert.Throws<MediaException>(() => FrameSource.Open(path));

        Assert.Equal(path, ex.FilePath);
        Assert.Equal($"{path}: no such file or folder", ex.Message);
    }

    [Fact]
    public void Text_file_named_mp4()
    {
        string path = _media.PathOf("notes.mp4");
        File.WriteAllText(path, "this is not a video\n");

        var ex = Assert.Throws<MediaException>(() => MediaProbe.Probe(path));

        Assert.StartsWith(path + ": not a video ffmpeg can read (", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Invalid data found when processing input", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Truncated_mp4_without_index()
    {
        string whole = _media.Video("whole.mp4", frames: 30);
        string path = _media.PathOf("cut.mp4");
        var bytes = File.ReadAllBytes(whole);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);

        var ex = Assert.Throws<MediaException>(() => FrameSource.Open(path));

        Assert.Equal(path, ex.FilePath);
        Assert.Contains("moov atom not found", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Truncated_mp4_with_index_in_front_fails_while_reading_and_leaves_no_output()
    {
        string whole = _media.PathOf("whole.mp4");
        TestMedia.Ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:r=25", "-frames:v", "50", "-c:v", "libx264", "-preset", "ultrafast",
            "-movflags", "+faststart", whole);
        string path = _media.PathOf("cut.mp4");
        var bytes = File.ReadAllBytes(whole);
        File.WriteAllBytes(path, bytes[..(bytes.Length * 2 / 3)]);
        File.Delete(whole);
        string output = _media.PathOf("out.mp4");

        var ex = Assert.Throws<MediaException>(() => Convert(path, output));

        Assert.Equal(path, ex.FilePath);
        Assert.Contains("of 50 frames", ex.Message, StringComparison.Ordinal);
        Assert.Contains("truncated", ex.Message, StringComparison.Ordinal);
        Assert.Equal(["cut.mp4"], Entries());
    }

    [Fact]
    public void Video_with_zero_frames()
    {
        string path = _media.PathOf("empty.mp4");
        TestMedia.Ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48", "-frames:v", "0", "-c:v", "libx264", path);

        var ex = Assert.Throws<MediaException>(() => FrameSource.Open(path));

        Assert.Equal(path, ex.FilePath);
        Assert.Contains("no video", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unwritable_output_folder()
    {
        string input = _media.Video("in.mp4", frames: 2);
        // Root ignores permission bits, so use a folder the kernel refuses to everyone when running as root.
        string folder = Environment.UserName == "root" ? "/sys" : _media.PathOf("locked");
        if (folder != "/sys" && !OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(folder);
            File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        }
        string output = Path.Combine(folder, "dloral-out.mp4");

        var ex = Assert.Throws<MediaException>(() => Convert(input, output));

        Assert.Equal(output, ex.FilePath);
        Assert.Contains($"cannot write in folder {folder}", ex.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
        Assert.Empty(Directory.GetFiles(folder, ".dloral-out*"));
    }

    [Fact]
    public void Output_folder_under_a_file_cannot_be_created()
    {
        string input = _media.Video("in.mp4", frames: 2);
        string output = Path.Combine(input, "sub", "out.mp4");

        var ex = Assert.Throws<MediaException>(() => Convert(input, output));

        Assert.Equal(output, ex.FilePath);
        Assert.Contains("cannot create the output folder", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Output_already_exists_without_overwrite()
    {
        string input = _media.Video("in.mp4", frames: 3);
        string output = _media.PathOf("out.mp4");
        File.WriteAllText(output, "precious");

        var ex = Assert.Throws<MediaException>(() => Convert(input, output));

        Assert.Equal($"{output}: already exists (use --overwrite to replace it)", ex.Message);
        Assert.Equal("precious", File.ReadAllText(output));
        Assert.Equal(["in.mp4", "out.mp4"], Entries());

        Convert(input, output, overwrite: true);
        Assert.Equal(3, MediaProbe.Probe(output).FrameCount);
    }

    [Fact]
    public void Output_folder_already_exists_without_overwrite_and_foreign_files_are_never_replaced()
    {
        string input = _media.Video("in.mp4", frames: 2);
        string folder = _media.PathOf("frames");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "frame_000001.png"), "old");

        var ex = Assert.Throws<MediaException>(() => Convert(input, folder));
        Assert.Contains("already exists", ex.Message, StringComparison.Ordinal);

        Convert(input, folder, overwrite: true);
        Assert.Equal(2, Directory.GetFiles(folder).Length);

        File.WriteAllText(Path.Combine(folder, "thesis.docx"), "not ours");
        var ex2 = Assert.Throws<MediaException>(() => Convert(input, folder, overwrite: true));
        Assert.Contains("thesis.docx", ex2.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(folder, "thesis.docx")));
    }

    [Fact]
    public void Output_equal_to_input_is_refused_also_through_links()
    {
        string input = _media.Video("in.mp4", frames: 2);
        var before = File.ReadAllBytes(input);
        string symlink = _media.PathOf("link.mp4");
        File.CreateSymbolicLink(symlink, input);
        string hardlink = _media.PathOf("hard.mp4");
        TestMedia.Run("ln", [input, hardlink]);
        Assert.True(File.Exists(hardlink));
        string dotted = Path.Combine(_media.Dir, ".", "sub", "..", "in.mp4");

        foreach (var output in new[] { input, symlink, hardlink, dotted })
        {
            var ex = Assert.Throws<MediaException>(() => Convert(input, output, overwrite: true));
            Assert.Equal(output, ex.FilePath);
            Assert.Contains("is the input itself", ex.Message, StringComparison.Ordinal);
        }
        Assert.Equal(before, File.ReadAllBytes(input));
        Assert.Equal(["hard.mp4", "in.mp4", "link.mp4"], Entries());
    }

    [Fact]
    public void Unknown_output_extension()
    {
        var ex = Assert.Throws<MediaException>(() => FrameWriter.Open(_media.PathOf("out.xyz")));
        Assert.Contains("unknown output type '.xyz'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Writer_disposed_without_complete_leaves_nothing()
    {
        string input = _media.Video("in.mp4", frames: 5);
        string video = _media.PathOf("out.mp4");
        string folder = _media.PathOf("frames");

        foreach (var output in new[] { video, folder })
        {
            using var source = FrameSource.Open(input);
            using (var writer = FrameWriter.Open(output, FrameWriterOptions.MatchSource(source)))
            {
                foreach (var frame in source.Take(3)) writer.Write(frame);
                Assert.True(File.Exists(writer.TemporaryPath) || Directory.Exists(writer.TemporaryPath));
            }
        }

        Assert.Equal(["in.mp4"], Entries());
    }

    [Fact]
    public void Cancellation_while_writing_removes_the_partial_output()
    {
        string input = _media.Video("in.mp4", frames: 20);
        string output = _media.PathOf("out.mp4");
        using var cts = new CancellationTokenSource();

        Assert.ThrowsAny<OperationCanceledException>(() =>
        {
            using var source = FrameSource.Open(input);
            using var writer = FrameWriter.Open(output, FrameWriterOptions.MatchSource(source) with { CancellationToken = cts.Token });
            foreach (var frame in source)
            {
                if (frame.Index == 5) cts.Cancel();
                writer.Write(frame);
            }
            writer.Complete();
        });

        Assert.Equal(["in.mp4"], Entries());
    }

    [Fact]
    public void Encoder_failure_names_the_output_and_leaves_nothing()
    {
        string input = _media.Video("in.mp4", frames: 5);
        string output = _media.PathOf("out.mp4");

        var ex = Assert.Throws<MediaException>(() =>
        {
            using var source = FrameSource.Open(input);
            using var writer = FrameWriter.Open(output, FrameWriterOptions.MatchSource(source) with { Preset = "no-such-preset" });
            foreach (var frame in source) writer.Write(frame);
            writer.Complete();
        });

        Assert.Equal(output, ex.FilePath);
        Assert.Contains("ffmpeg", ex.Message, StringComparison.Ordinal);
        Assert.Equal(["in.mp4"], Entries());
    }

    [Fact]
    public void Nothing_written_is_an_error_not_an_empty_file()
    {
        string output = _media.PathOf("out.mp4");
        using var writer = FrameWriter.Open(output);

        var ex = Assert.Throws<MediaException>(writer.Complete);

        Assert.Contains("no frames were written", ex.Message, StringComparison.Ordinal);
        writer.Dispose();
        Assert.Empty(Entries());
    }
}
