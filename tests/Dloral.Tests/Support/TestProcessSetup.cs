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

    /// <summary>Where the tests pretend the compact weights live: a path that never exists.</summary>
    internal static readonly string NoCompactModel = Path.Combine(Path.GetTempPath(), "dloral-tests-no-compact-model", "dloral_compact.safetensors");

    // `dloral upscale` without --model picks the compact model when its weights exist (e.g. once trained into models/compact):
    // the CLI tests are written for the bicubic default, so the search is pointed at a path that never exists.
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void HideCompactModel() => Environment.SetEnvironmentVariable("DLORAL_COMPACT_MODEL", NoCompactModel);
}
