using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Dloral.Metrics;
using static TorchSharp.torch;

namespace Dloral.Bench;

/// <summary>
/// <c>micro-metrics [BenchmarkDotNet args]</c>: BenchmarkDotNet microbenchmarks of the metric hot spots on one
/// 256×256 frame pair (flow warp, SSIM, Lucas–Kanade flow, ResNet-18 feature distance). Short-run job so it fits
/// a 2-core machine; results land in bench/results/BenchmarkDotNet/ and are summarised on the console.
/// In-process toolchain: a generated child project would miss the libtorch native fix-up of our build.
/// </summary>
internal static class MetricsMicroBench
{
    public static int Run(string[] args)
    {
        var config = ManualConfig.Create(DefaultConfig.Instance)
            .AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance))
            .WithArtifactsPath(Path.Combine(BenchUtil.ResultsDir, "BenchmarkDotNet"))
            .WithOptions(ConfigOptions.DisableOptimizationsValidator);
        var summaries = BenchmarkSwitcher.FromTypes([typeof(MetricsMicroBenchmarks)]).Run(args.Length == 0 ? ["--filter", "*"] : args, config);
        return summaries.Any(s => s.HasCriticalValidationErrors) ? 1 : 0;
    }
}

[MemoryDiagnoser]
public class MetricsMicroBenchmarks
{
    private Tensor _a = null!;
    private Tensor _b = null!;
    private Tensor _flow = null!;
    private LucasKanadeFlow _lk = null!;
    private ResNet18FeatureDistance? _feature;

    [GlobalSetup]
    public void Setup()
    {
        Dloral.TorchRuntime.Initialize();
        var g = new Generator(1);
        _a = rand([1, 3, 256, 256], generator: g);
        _b = (_a.roll(2, 3) + randn([1, 3, 256, 256], generator: g) * 0.01).clamp(0, 1);
        _flow = randn([1, 2, 256, 256], generator: g) * 2;
        _lk = new LucasKanadeFlow();
        if (ResNet18OnnxImporter.FindModel() is not null) _feature = ResNet18FeatureDistance.Load();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _feature?.Dispose();
        _a.Dispose();
        _b.Dispose();
        _flow.Dispose();
    }

    [Benchmark]
    public void FlowWarp256()
    {
        using var w = FlowWarping.Warp(_a, _flow);
    }

    [Benchmark]
    public double SsimY256() => Ssim.Compute(_a, _b, yOnly: true, cropBorder: 4);

    [Benchmark]
    public double PsnrY256() => Psnr.Compute(_a, _b, yOnly: true, cropBorder: 4);

    [Benchmark]
    public void LucasKanade256()
    {
        using var f = _lk.Estimate(_a, _b);
    }

    [Benchmark]
    public double ResNet18FeatureDistance256() => _feature?.Distance(_a, _b) ?? double.NaN;
}
