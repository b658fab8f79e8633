using Dloral.Media;

namespace Dloral;

/// <summary>What an upscale run produced.</summary>
/// <param name="OutputPath">The final output (file or folder).</param>
/// <param name="Kind">Video, single image or folder of PNG frames.</param>
/// <param name="Frames">Frames written.</param>
/// <param name="Width">Output frame width.</param>
/// <param name="Height">Output frame height.</param>
/// <param name="Elapsed">Wall time of the run.</param>
/// <param name="Warnings">Warnings from reading and writing, and about settings this machine runs slowly (bfloat16 without native support).</param>
public sealed record UpscaleResult(string OutputPath, OutputKind Kind, long Frames, int Width, int Height, TimeSpan Elapsed, IReadOnlyList<string> Warnings);
