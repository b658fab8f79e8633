using System.Runtime.InteropServices;
using TorchSharp;

namespace Dloral;

/// <summary>Process-wide TorchSharp setup: thread count from the machine, allocator tuning, one place to call it.</summary>
public static partial class TorchRuntime
{
    private static readonly object Gate = new();
    private static bool _initialized;
    private static bool _pinned;

    /// <summary>Loads libtorch and sets the intra-op thread count (default: all cores).</summary>
    public static void Initialize(int? threads = null)
    {
        lock (Gate)
        {
            if (_pinned) return;
            if (!_initialized) TuneAllocator();
            int n = threads ?? Environment.ProcessorCount;
            if (!_initialized || threads is not null)
            {
                torch.set_num_threads(Math.Max(1, n));
                _initialized = true;
            }
        }
    }

    /// <summary>
    /// For hosts that run many pipelines at once in one process (the test runner): the thread count is process-global
    /// in libtorch, and changing it while another pipeline computes changes that pipeline's float results (and
    /// libtorch has produced NaNs right after such a change). Pinning fixes it; later requests are ignored.
    /// </summary>
    internal static void PinThreads(int threads)
    {
        lock (Gate)
        {
            if (!_initialized) TuneAllocator();
            torch.set_num_threads(Math.Max(1, threads));
            _initialized = true;
            _pinned = true;
        }
    }

    private const int M_MMAP_THRESHOLD = -3;
    private const int M_TRIM_THRESHOLD = -1;

    /// <summary>
    /// For steady workloads that allocate the same large buffers frame after frame (<c>dloral eval</c>): keep freed
    /// memory in the heap for reuse instead of returning it to the OS. With the 128 KiB mmap threshold every
    /// full-frame temporary is a fresh mmap whose pages fault in one by one (zero-filled by the kernel): measured
    /// on a 4-frame 720p eval, 27 M page faults and 2/3 of the CPU time in the kernel. Call after
    /// <see cref="Initialize"/>. 32 MiB is glibc's largest mmap threshold; bigger buffers are still mmapped.
    /// </summary>
    public static void ReuseFreedMemory()
    {
        if (!OperatingSystem.IsLinux()) return;
        lock (Gate)
        {
            try
            {
                Mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
                Mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024);
            }
            catch (DllNotFoundException) { }
            catch (EntryPointNotFoundException) { }
        }
    }

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int Mallopt(int param, int value);

    // glibc's dynamic mmap threshold grows after large frees and then keeps freed attention/tile
    // buffers in the heap: measured on the CFR, chunked attention peaked at ~800 MB instead of ~300 MB.
    // A fixed 128 KiB threshold returns large buffers to the OS at once.
    private static void TuneAllocator()
    {
        if (!OperatingSystem.IsLinux()) return;
        try { Mallopt(M_MMAP_THRESHOLD, 128 * 1024); }
        catch (DllNotFoundException) { }
        catch (EntryPointNotFoundException) { }
    }
}
