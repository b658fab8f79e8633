using Dloral.Temporal;
using Dloral.Tests.Support;

namespace Dloral.Tests.Temporal;

/// <summary>The golden CFR (weights.safetensors), loaded strictly once per test class.</summary>
internal static class CfrGolden
{
    public static CrossFrameRetrieval Load()
    {
        TorchRuntime.Initialize();
        var cfr = new CrossFrameRetrieval();
        cfr.Load(GoldenData.PathOf("cfr", "weights.safetensors"), ignoreUnusedSubmodules: false);
        cfr.eval();
        return cfr;
    }
}
