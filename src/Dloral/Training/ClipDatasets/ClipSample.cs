using static TorchSharp.torch;

namespace Dloral.Training.ClipDatasets;

/// <summary>The synthetic camera motion of an image clip (per frame t: translation v·t + ½a·t², rotation ω·t, zoom 1 + ζ·t).</summary>
public sealed record CameraMotion(double Vx, double Vy, double Ax, double Ay, double RotationDegPerFrame, double ZoomPerFrame)
{
    public (double Dx, double Dy) Shift(int t) => (Vx * t + 0.5 * Ax * t * t, Vy * t + 0.5 * Ay * t * t);
}

/// <summary>One high-resolution training clip and where it came from. Owns <see cref="Hr"/>.</summary>
public sealed class ClipSample : IDisposable
{
    /// <summary>Frames [T,3,H,W], float32 in [0,1].</summary>
    public required Tensor Hr { get; init; }
    public required string Source { get; init; }
    /// <summary>Dataset index actually used (differs from the requested one when a corrupt file was skipped).</summary>
    public required int Index { get; init; }
    /// <summary>Dihedral transform applied to all frames (0 = none).</summary>
    public required int DihedralIndex { get; init; }
    /// <summary>Image clips: the synthetic camera motion; null for video clips.</summary>
    public CameraMotion? Motion { get; init; }
    /// <summary>Video clips: source frame numbers of the T frames; image clips: 0..T-1.</summary>
    public required int[] FrameIndices { get; init; }
    /// <summary>Top-left of the crop in the (scaled) source, before the dihedral transform.</summary>
    public required (int X, int Y) CropOrigin { get; init; }

    public void Dispose() => Hr.Dispose();
}

/// <summary>A dataset of short HR clips; <see cref="Get"/> is deterministic in (index, seed) and thread-safe.</summary>
public interface IClipDataset
{
    int Count { get; }
    IReadOnlyList<string> Files { get; }
    ClipSample Get(int index, long seed);
    /// <summary>Warnings about skipped (corrupt, missing, too small) files, in the order they occurred.</summary>
    IReadOnlyList<string> Warnings { get; }
}
