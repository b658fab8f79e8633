namespace Dloral.Bench;

internal static class PipelineOverheadBench
{
    public static int Run(string[] args) => throw new NotImplementedException();
}
