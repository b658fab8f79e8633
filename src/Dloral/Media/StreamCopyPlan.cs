namespace Dloral.Media;

/// <summary>
/// Which audio and subtitle streams of the source go into a video output and how: copied when the container can
/// hold the codec, otherwise converted (lossless audio → ALAC, other audio → AAC, text subtitles → mov_text or
/// SubRip) or dropped with a warning (bitmap subtitles in MP4/MOV).
/// </summary>
internal static class StreamCopyPlan
{
    public sealed record Entry(int StreamIndex, bool IsAudio, string Codec);

    private static readonly HashSet<string> Mp4Audio = new(StringComparer.Ordinal) { "aac", "mp3", "mp2", "ac3", "eac3", "opus", "alac" };
    private static readonly HashSet<string> MovAudio = new(StringComparer.Ordinal) { "aac", "mp3", "mp2", "ac3", "eac3", "alac" };

    public static List<Entry> For(string extension, MediaInfo? source, bool audio, bool subtitles, Action<string> warn)
    {
        var plan = new List<Entry>();
        if (source is null || source.Kind != MediaKind.Video) return plan;
        bool matroska = extension == ".mkv";
        bool mov = extension == ".mov";
        if (audio)
        {
            foreach (var a in source.AudioStreams)
            {
                string codec;
                if (matroska || (mov ? MovAudio.Contains(a.Codec) || a.Codec.StartsWith("pcm_", StringComparison.Ordinal) : Mp4Audio.Contains(a.Codec)))
                    codec = "copy";
                else
                {
                    bool lossless = a.Codec == "flac" || a.Codec.StartsWith("pcm_", StringComparison.Ordinal);
                    codec = lossless ? "alac" : "aac";
                    warn($"audio stream {a.Index} ({a.Codec}) cannot be stored in {extension}: re-encoded to {(lossless ? "ALAC (lossless)" : "AAC 192 kb/s")}");
                }
                plan.Add(new Entry(a.Index, true, codec));
            }
        }
        if (subtitles)
        {
            foreach (var s in source.SubtitleStreams)
            {
                string codec;
                if (matroska) codec = s.Codec == "mov_text" ? "srt" : "copy";
                else if (!s.IsText)
                {
                    warn($"subtitle stream {s.Index} ({s.Codec}) is a bitmap subtitle {extension} cannot hold: dropped (use .mkv to keep it)");
                    continue;
                }
                else codec = s.Codec == "mov_text" ? "copy" : "mov_text";
                if (codec != "copy" && !(matroska && s.Codec == "mov_text"))
                    warn($"subtitle stream {s.Index} ({s.Codec}) converted to {codec} for {extension} (styling may be simplified)");
                plan.Add(new Entry(s.Index, false, codec));
            }
        }
        return plan;
    }
}
