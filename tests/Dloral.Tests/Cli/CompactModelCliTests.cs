using System.Text.Json;
using Dloral.Cli.Commands;
using Dloral.Media;
using Dloral.Pipeline.Compact;
using Dloral.Tests.Support;

namespace Dloral.Tests.Cli;

/// <summary>
/// <c>dloral upscale</c> with the compact DLoRAL model: by file path, by name, as the default, and its errors.
/// The test process points <c>DLORAL_COMPACT_MODEL</c> at a path that never exists (see <see cref="TestProcessSetup"/>).
/// </summary>
[Collection("DloralEndToEnd")]
public sealed class CompactModelCliTests : IDisposable
{
    private readonly TestMedia _media = new();

    public void Dispose() => _media.Dispose();

    /// <summary>A random-init compact model saved where only the tests know.</summary>
    private string CompactFile()
    {
        string path = _media.PathOf("my_compact.safetensors");
        if (!File.Exists(path))
        {
            TorchRuntime.Initialize();
            using var model = CompactDloral.Build(Path.Combine(GoldenData.RepoRoot, "models", "compact"));
            model.Save(path);
        }
        return path;
    }

    /// <summary>Frame count and size of a PNG-folder output, read back through our media layer.</summary>
    private static (int Frames, int Width, int Height) Probe(string folder)
    {
        int frames = Directory.GetFiles(folder, "*.png").Length;
        using var source = FrameSource.Open(folder);
        return (frames, source.Width, source.Height);
    }

    [Fact]
    public void A_compact_weights_file_as_model_upscales_x4_in_float32_bfloat16_and_frame_by_frame()
    {
        var model = CompactFile();
        Assert.True(CompactModelFile.IsCompactFile(model));
        Assert.False(Dloral.Checkpoints.DloralModelFile.IsDloralFile(model));   // not mistaken for a converted SD file
        var input = _media.Video("clip.mkv", 64, 48, rate: "25", frames: 4, codec: "ffv1", pixelFormat: "bgr0");
        var common = new[] { "--model", model, "--min-size", "64", "--progress", "none" };

        var output = _media.PathOf("out") + "/";
        var r = CliRunner.Run(["upscale", input, "-o", output, .. common]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal((4, 256, 192), Probe(output));
        Assert.DoesNotContain("note:", r.Stderr);   // an explicit model: no default-model note

        foreach (var extra in new[] { new[] { "--dtype", "bf16" }, new[] { "--no-temporal" } })
        {
            var o = _media.PathOf("out" + string.Join("", extra)) + "/";
            var e = CliRunner.Run(["upscale", input, "-o", o, "-n", "2", .. common, .. extra]);
            Assert.True(e.ExitCode == 0, string.Join(" ", extra) + ": " + e);
            Assert.Equal((2, 256, 192), Probe(o));
        }
    }

    [Fact]
    public void Compact_by_name_without_weights_is_exit_2_naming_where_it_looked_and_the_default_falls_back_to_bicubic()
    {
        var input = _media.Video("clip.mp4", 32, 24, frames: 2);
        var r = CliRunner.Run("upscale", input, "-o", _media.PathOf("a.mkv"), "--model", "compact", "--progress", "none");
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains("compact", r.Stderr);
        Assert.Contains("not found", r.Stderr);
        Assert.Contains(TestProcessSetup.NoCompactModel, r.Stderr);
        Assert.False(File.Exists(_media.PathOf("a.mkv")));

        var d = CliRunner.Run("upscale", input, "-o", _media.PathOf("b.mkv"), "--progress", "none", "--preset", "ultrafast");
        Assert.True(d.ExitCode == 0, d.ToString());
        var note = Assert.Single(d.Stderr.Split('\n'), l => l.StartsWith("note:", StringComparison.Ordinal));
        Assert.Contains(TestProcessSetup.NoCompactModel, note);
        Assert.Contains("bicubic x4", d.Stderr);
        var q = CliRunner.Run("upscale", input, "-o", _media.PathOf("c.mkv"), "--quiet", "--preset", "ultrafast");
        Assert.Equal(0, q.ExitCode);
        Assert.Equal("", q.Stderr);

        var models = CliRunner.Run("models", "--json");
        using var doc = JsonDocument.Parse(models.Stdout);
        var compact = Assert.Single(doc.RootElement.EnumerateArray(), e => e.GetProperty("name").GetString() == "compact");
        Assert.False(compact.GetProperty("loadable").GetBoolean());
        Assert.Contains("not found", compact.GetProperty("description").GetString());
    }

    [Fact]
    public void A_scale_other_than_the_models_is_exit_2_and_the_default_uses_compact_only_when_found_at_its_scale()
    {
        var model = CompactFile();
        var input = _media.Video("clip.mp4", 32, 24, frames: 2);
        var r = CliRunner.Run("upscale", input, "-o", _media.PathOf("a.mkv"), "--model", model, "--scale", "2", "--min-size", "64");
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains("x4 only", r.Stderr);
        Assert.Contains("--scale 4", r.Stderr);
        Assert.False(File.Exists(_media.PathOf("a.mkv")));

        // The default --min-size 512: 128×96 is processed at 680×512 (CFR size check on) and resized back to exactly x4.
        var big = _media.PathOf("big") + "/";
        var b = CliRunner.Run("upscale", input, "-o", big, "--model", model, "--progress", "none");
        Assert.True(b.ExitCode == 0, b.ToString());
        Assert.Equal((2, 128, 96), Probe(big));

        // The default model (no --model), decided from where the weights were found.
        var found = new CompactModelLocation(model, [model]);
        var note = new StringWriter();
        Assert.Equal("compact", UpscaleCommand.DefaultModel(4, note, found));
        Assert.Equal("", note.ToString());
        Assert.Equal("bicubic", UpscaleCommand.DefaultModel(2, note, found));
        Assert.Contains("x4 only", note.ToString());
        var missing = new CompactModelLocation(null, ["/nowhere/dloral_compact.safetensors"]);
        note = new StringWriter();
        Assert.Equal("bicubic", UpscaleCommand.DefaultModel(4, note, missing));
        Assert.Contains("/nowhere/dloral_compact.safetensors", note.ToString());

        // Search order: the override alone; else models/compact, shipped folders, then the user folder.
        Assert.Equal([Path.GetFullPath(model)], CompactModelFile.SearchPaths(model, "/repo/models/compact", ["/app/models"], "/home/u/models"));
        Assert.Equal(["/repo/models/compact/dloral_compact.safetensors", "/app/models/compact/dloral_compact.safetensors",
                      "/home/u/models/compact.safetensors", "/home/u/models/dloral_compact.safetensors"],
                     CompactModelFile.SearchPaths(null, "/repo/models/compact", ["/app/models"], "/home/u/models"));
    }
}
