using TorchSharp;

namespace Dloral;

/// <summary>Process-wide TorchSharp setup: thread count from the machine, one place to call it.</summary>
public static class TorchRuntime
{
    private static readonly object Gate = new();
    private static bool _initialized;

    /// <summary>Loads libtorch and sets the intra-op thread count (default: all cores).</summary>
    public static void Initialize(int? threads = null)
    {
        lock (Gate)
        {
            int n = threads ?? Environment.ProcessorCount;
            if (!_initialized || threads is not null)
            {
                torch.set_num_threads(Math.Max(1, n));
                _initialized = true;
            }
        }
    }
}
