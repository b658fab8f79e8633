using System.Text.Json;
using Dloral.Checkpoints;
using TorchSharp;

namespace Dloral.Tests.Support;

/// <summary>
/// Locates <c>shared/golden</c> (the reference outputs produced by the Python implementations).
/// It lies beside the repository: <c>&lt;repo&gt;/../shared/golden</c>, in a developer's tree and in CI alike;
/// <c>DLORAL_GOLDEN</c> overrides. Missing golden data is a test failure, never a skip.
/// </summary>
public static class GoldenData
{
    private static readonly Lazy<string> RootLazy = new(FindRoot);

    public static string Root => RootLazy.Value;

    public static string PathOf(params string[] parts) => System.IO.Path.Combine([Root, .. parts]);

    public static SafeTensorsFile Open(params string[] parts) => SafeTensorsFile.Open(PathOf(parts));

    public static JsonDocument Json(params string[] parts) => JsonDocument.Parse(File.ReadAllText(PathOf(parts)));

    /// <summary>The repository root (the folder holding Dloral.slnx).</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The trained compact weights committed under models/compact (what `dloral upscale` uses by default).</summary>
    public static string ShippedCompactWeights => Path.Combine(RepoRoot, "models", "compact", Dloral.Pipeline.Compact.CompactDloral.WeightsFileName);

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(System.IO.Path.Combine(dir.FullName, "Dloral.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException($"cannot find Dloral.slnx above {AppContext.BaseDirectory}");
    }

    private static string FindRoot()
    {
        var env = Environment.GetEnvironmentVariable("DLORAL_GOLDEN");
        if (!string.IsNullOrEmpty(env))
            return Directory.Exists(env) ? env : throw new DirectoryNotFoundException($"DLORAL_GOLDEN={env} does not exist");
        var candidate = System.IO.Path.GetFullPath(System.IO.Path.Combine(RepoRoot, "..", "shared", "golden"));
        if (Directory.Exists(candidate)) return candidate;
        throw new DirectoryNotFoundException($"golden data not found at {candidate}; set DLORAL_GOLDEN");
    }
}

/// <summary>Numeric comparisons that report where and by how much tensors differ.</summary>
public static class TensorAssert
{
    /// <summary>|a-b| ≤ atol + rtol·|b| everywhere (b is the reference).</summary>
    public static void Close(torch.Tensor expected, torch.Tensor actual, double atol = 1e-5, double rtol = 1e-4, string what = "")
    {
        Assert.True(expected.shape.SequenceEqual(actual.shape),
            $"{what}: shape [{string.Join(",", actual.shape)}], expected [{string.Join(",", expected.shape)}]");
        using var scope = torch.NewDisposeScope();
        var e = expected.to_type(torch.ScalarType.Float64).cpu();
        var a = actual.to_type(torch.ScalarType.Float64).cpu();
        Assert.False(a.isnan().any().item<bool>(), $"{what}: result has NaN");
        var diff = (a - e).abs();
        var excess = diff - (atol + rtol * e.abs());
        double maxDiff = diff.max().item<double>();
        double worst = excess.max().item<double>();
        Assert.True(worst <= 0, $"{what}: max |diff| {maxDiff:G4} exceeds atol {atol:G3} + rtol {rtol:G3}·|ref| (max |ref| {e.abs().max().item<double>():G4})");
    }

    public static double MaxAbsDiff(torch.Tensor expected, torch.Tensor actual)
    {
        using var scope = torch.NewDisposeScope();
        return (actual.to_type(torch.ScalarType.Float64).cpu() - expected.to_type(torch.ScalarType.Float64).cpu()).abs().max().item<double>();
    }

    public static void Equal(torch.Tensor expected, torch.Tensor actual, string what = "")
    {
        Assert.True(expected.shape.SequenceEqual(actual.shape),
            $"{what}: shape [{string.Join(",", actual.shape)}], expected [{string.Join(",", expected.shape)}]");
        Assert.True(expected.dtype == actual.dtype && expected.cpu().equal(actual.cpu()).all().item<bool>(), $"{what}: tensors differ");
    }
}
