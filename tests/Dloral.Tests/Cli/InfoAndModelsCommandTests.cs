using System.Text.Json;
using Dloral.Tests.Support;

namespace Dloral.Tests.Cli;

public sealed class InfoAndModelsCommandTests : IDisposable
{
    private readonly TestMedia _media = new();

    public void Dispose() => _media.Dispose();

    [Fact]
    public void Info_reports_exact_rate_frames_and_audio_as_text_and_json()
    {
        var input = _media.Video("i.mp4", 40, 30, rate: "30000/1001", frames: 9, audio: true);
        var text = CliRunner.Run("info", input);
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Contains("40x30", text.Stdout);
        Assert.Contains("30000/1001", text.Stdout);
        Assert.Contains("aac", text.Stdout);

        var json = CliRunner.Run("info", input, "--json");
        Assert.Equal(0, json.ExitCode);
        using var doc = JsonDocument.Parse(json.Stdout);
        var o = doc.RootElement;
        Assert.Equal("video", o.GetProperty("kind").GetString());
        Assert.Equal(40, o.GetProperty("width").GetInt32());
        Assert.Equal("30000/1001", o.GetProperty("frame_rate").GetString());
        Assert.Equal(9, o.GetProperty("frame_count").GetInt64());
        Assert.Equal(1, o.GetProperty("audio").GetArrayLength());
    }

    [Fact]
    public void Info_on_a_missing_file_is_exit_2_naming_it()
    {
        var r = CliRunner.Run("info", _media.PathOf("ghost.mkv"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("ghost.mkv", r.Stderr);
    }

    [Fact]
    public void Models_lists_the_builtin_baselines_and_where_models_come_from()
    {
        var r = CliRunner.Run("models");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("bicubic", r.Stdout);
        Assert.Contains("lanczos", r.Stdout);
        Assert.Contains("User model folder", r.Stdout);
        var json = CliRunner.Run("models", "--json");
        using var doc = JsonDocument.Parse(json.Stdout);
        Assert.Contains(doc.RootElement.EnumerateArray(), e => e.GetProperty("name").GetString() == "bicubic" && e.GetProperty("origin").GetString() == "builtin");
    }

    [Fact]
    public void Help_documents_the_exit_codes()
    {
        foreach (var args in new[] { new[] { "--help" }, new[] { "upscale", "--help" } })
        {
            var r = CliRunner.Run(args);
            Assert.Equal(0, r.ExitCode);
            Assert.Contains("Exit codes:", r.Stdout);
            Assert.Contains("130", r.Stdout);
        }
        Assert.Contains("--progress", CliRunner.Run("upscale", "--help").Stdout);
    }
}
