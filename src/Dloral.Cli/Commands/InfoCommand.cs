using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dloral.Media;

namespace Dloral.Cli.Commands;

/// <summary><c>dloral info INPUT [--json]</c>: what the probe found.</summary>
public static class InfoCommand
{
    public static Command Create(CliConsole console)
    {
        var input = new Argument<string>("INPUT") { Description = "Video file, image or folder of images." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of text." };
        var command = new Command("info", "Show what dloral sees in an input: size, exact frame rate, frame count, duration, pixel format and bit depth, rotation, audio and subtitle streams, variable frame rate.")
        {
            input, json,
        };
        command.SetAction((parse, ct) => CommandErrors.RunAsync(console, ct, token =>
        {
            var info = MediaProbe.Probe(parse.GetValue(input)!, cancellationToken: token);
            console.Out.WriteLine(parse.GetValue(json) ? ToJson(info).ToJsonString(new JsonSerializerOptions { WriteIndented = true }) : ToText(info));
            return Task.FromResult(ExitCodes.Ok);
        }));
        return command;
    }

    public static JsonObject ToJson(MediaInfo i) => new()
    {
        ["path"] = i.Path,
        ["kind"] = i.Kind switch { MediaKind.Video => "video", MediaKind.Image => "image", _ => "image_folder" },
        ["format"] = i.FormatName,
        ["width"] = i.Width,
        ["height"] = i.Height,
        ["frame_rate"] = i.FrameRate.ToString(),
        ["frame_rate_value"] = Math.Round(i.FrameRate.ToDouble(), 6),
        ["average_frame_rate"] = i.AverageFrameRate?.ToString(),
        ["variable_frame_rate"] = i.IsVariableFrameRate,
        ["frame_count"] = i.FrameCount,
        ["frame_count_exact"] = i.FrameCountExact,
        ["duration_seconds"] = i.DurationSeconds,
        ["video_codec"] = i.VideoCodec,
        ["pixel_format"] = i.PixelFormat,
        ["bit_depth"] = i.BitDepth,
        ["has_alpha"] = i.HasAlpha,
        ["gray"] = i.IsGray,
        ["rotation"] = i.Rotation,
        ["audio"] = new JsonArray(i.AudioStreams.Select(a => (JsonNode)new JsonObject
        {
            ["index"] = a.Index, ["codec"] = a.Codec, ["sample_rate"] = a.SampleRate, ["channels"] = a.Channels,
            ["duration_seconds"] = a.DurationSeconds, ["language"] = a.Language,
        }).ToArray()),
        ["subtitles"] = new JsonArray(i.SubtitleStreams.Select(s => (JsonNode)new JsonObject
        {
            ["index"] = s.Index, ["codec"] = s.Codec, ["text"] = s.IsText, ["language"] = s.Language,
        }).ToArray()),
        ["files"] = i.Kind == MediaKind.ImageFolder ? i.Files.Count : null,
    };

    public static string ToText(MediaInfo i)
    {
        var c = CultureInfo.InvariantCulture;
        var lines = new List<string>
        {
            $"{i.Path}",
            $"  kind:        {(i.Kind switch { MediaKind.Video => "video", MediaKind.Image => "image", _ => $"image folder ({i.Files.Count} files)" })}" + (i.FormatName.Length > 0 ? $" [{i.FormatName}]" : ""),
            $"  size:        {i.Width}x{i.Height}" + (i.Rotation != 0 ? $" (stored {i.CodedWidth}x{i.CodedHeight}, rotated {i.Rotation}°)" : ""),
            string.Create(c, $"  frame rate:  {i.FrameRate} ({i.FrameRate.ToDouble():0.###} fps)") + (i.IsVariableFrameRate ? $", variable (average {i.AverageFrameRate})" : ""),
            $"  frames:      {i.FrameCount}" + (i.FrameCountExact ? "" : " (estimated)"),
            string.Create(c, $"  duration:    {i.DurationSeconds:0.###} s"),
            $"  video:       {i.VideoCodec ?? "-"}, {i.PixelFormat}, {i.BitDepth}-bit" + (i.IsGray ? ", grayscale" : "") + (i.HasAlpha ? ", alpha" : ""),
        };
        if (i.AudioStreams.Count == 0) lines.Add("  audio:       none");
        foreach (var a in i.AudioStreams)
            lines.Add($"  audio #{a.Index}:    {a.Codec}, {a.SampleRate} Hz, {a.Channels} ch" + (a.Language is null ? "" : $", {a.Language}"));
        if (i.SubtitleStreams.Count == 0) lines.Add("  subtitles:   none");
        foreach (var s in i.SubtitleStreams)
            lines.Add($"  subtitle #{s.Index}: {s.Codec}" + (s.IsText ? " (text)" : " (bitmap)") + (s.Language is null ? "" : $", {s.Language}"));
        return string.Join(Environment.NewLine, lines);
    }
}
