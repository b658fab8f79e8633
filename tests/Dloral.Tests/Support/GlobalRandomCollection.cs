namespace Dloral.Tests.Support;

/// <summary>
/// Tests whose assertions depend on the exact draws of torch's global generator (<c>manual_seed</c>, then modules built
/// with their default initialisation). They run alone: any test running beside them draws from the same generator
/// (every module constructor does) and would change what they get.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GlobalRandomCollection
{
    public const string Name = "GlobalRandom";
}
