using static TorchSharp.torch;

namespace Dloral.Metrics;

/// <summary>
/// One sequence to evaluate: a display name, the path it came from (used in error messages), and a lazily
/// enumerated stream of RGB frames [3,H,W] in [0,1]. The evaluator disposes every frame it receives.
/// <c>ExpectedFrames</c>: the frame count if known in advance (used to pick the middle frame for the crops).
/// </summary>
public sealed record EvalInput(string Name, string Path, Func<IEnumerable<Tensor>> OpenFrames, long? ExpectedFrames = null);
