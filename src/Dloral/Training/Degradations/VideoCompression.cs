using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Training.Degradations;

/// <summary>
/// Real video-codec artifacts: the whole clip is encoded with ffmpeg (libx264 / libx265, yuv420p,
/// CRF) through stdin → an elementary stream in memory → decoded back through stdout. No temp
/// files. Odd sizes are padded by edge replication to even (yuv420p needs it) and cropped back.
/// Deterministic: one encoder thread.
/// </summary>
public static class VideoCompression
{
    /// <summary>Encodes and decodes <paramref name="frames"/> [T,3,H,W] in [0,1]; returns the decoded frames (same count and size).</summary>
    public static Tensor RoundTrip(Tensor frames, VideoCodecStep step)
    {
        if (frames.dim() != 4 || frames.shape[1] != 3)
            throw new ArgumentException($"Video round trip expects [T,3,H,W], got [{string.Join(",", frames.shape)}].", nameof(frames));
        int t = (int)frames.shape[0], h = (int)frames.shape[2], w = (int)frames.shape[3];
        int ph = h + (h & 1), pw = w + (w & 1);
        using var scope = NewDisposeScope();
        var padded = (ph != h || pw != w)
            ? nn.functional.pad(frames, [0, pw - w, 0, ph - h], PaddingModes.Replicate)
            : frames;
        byte[] raw = FrameBytes.ToRgb24(padded);

        string format = step.Codec == "libx265" ? "hevc" : "h264";
        var encodeArgs = new List<string>
        {
            "-hide_banner", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", $"{pw}x{ph}", "-r", "25", "-i", "-",
            "-c:v", step.Codec, "-preset", step.Preset, "-crf", step.Crf.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-pix_fmt", "yuv420p",
        };
        if (step.Codec == "libx265")
            encodeArgs.AddRange(["-x265-params", "log-level=error:pools=1:frame-threads=1"]);
        else
            encodeArgs.AddRange(["-threads", "1"]);
        encodeArgs.AddRange(["-f", format, "-"]);
        byte[] bitstream = FfmpegProcess.Run(FfmpegProcess.FfmpegPath, encodeArgs, raw, $"{step.Codec} encode of {t} frames {pw}x{ph}");

        var decodeArgs = new List<string>
        {
            "-hide_banner", "-v", "error", "-threads", "1", "-f", format, "-i", "-",
            "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
        };
        byte[] decoded = FfmpegProcess.Run(FfmpegProcess.FfmpegPath, decodeArgs, bitstream, $"{format} decode");
        long frameBytes = (long)pw * ph * 3;
        if (decoded.Length != frameBytes * t)
            throw new InvalidOperationException($"ffmpeg {format} round trip returned {decoded.Length / (double)frameBytes:F2} frames of {pw}x{ph}, expected {t}.");
        var x = FrameBytes.FromRgb24(decoded, t, ph, pw, frames.device);
        if (ph != h || pw != w) x = x[.., .., ..h, ..w].contiguous();
        return x.MoveToOuterDisposeScope();
    }
}
