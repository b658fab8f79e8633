using System.Runtime.CompilerServices;

namespace Dloral.Tests.Support;

internal static class TestProcessSetup
{
    // xunit runs test classes in parallel in one process; a test that asked for another thread count (e.g. `--threads 1`)
    // would change the float results of a golden test running at the same moment. One count for the whole run.
#pragma warning disable CA2255 // a module initializer is exactly what a test assembly needs here
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void PinTorchThreads() => TorchRuntime.PinThreads(Environment.ProcessorCount);
}
