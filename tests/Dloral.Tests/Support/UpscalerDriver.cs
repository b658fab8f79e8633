using Dloral.Media;
using Dloral.Pipeline;
using static TorchSharp.torch;

namespace Dloral.Tests.Support;

/// <summary>Feeds an upscaler frame windows the way VideoUpscaleJob does, from lossless ffmpeg test clips.</summary>
internal static class UpscalerDriver
{
    /// <summary><paramref name="frames"/> frames of an ffmpeg lavfi <paramref name="source"/> (lossless FFV1) as float [3,H,W] in [0,1], read through our media layer.</summary>
    public static List<Tensor> Clip(TestMedia media, string source, int frames)
    {
        string path = media.PathOf("clip.mkv");
        TestMedia.Ffmpeg("-f", "lavfi", "-i", source, "-frames:v", frames.ToString(System.Globalization.CultureInfo.InvariantCulture), "-c:v", "ffv1", "-pix_fmt", "bgr0", path);
        using var src = FrameSource.Open(path);
        return src.Select(f => FrameTensors.ToTensor(f).DetachFromDisposeScope()).ToList();
    }

    /// <summary>Drives the upscaler like VideoUpscaleJob does (FramesBefore earlier and FramesAfter later frames per window).</summary>
    public static List<Tensor> Run(IUpscaler upscaler, IReadOnlyList<Tensor> frames, Action<int>? afterFrame = null)
    {
        var outputs = new List<Tensor>();
        for (int n = 0; n < frames.Count; n++)
        {
            int from = Math.Max(0, n - upscaler.FramesBefore), to = Math.Min(frames.Count - 1, n + upscaler.FramesAfter);
            var window = new FrameWindow(frames.Skip(from).Take(to - from + 1).ToList(), n - from, n, sceneStart: n == 0);
            outputs.Add(upscaler.Upscale(window).DetachFromDisposeScope());
            afterFrame?.Invoke(n);
        }
        return outputs;
    }
}
