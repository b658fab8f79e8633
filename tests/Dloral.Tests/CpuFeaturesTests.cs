using Dloral.Pipeline;
using Dloral.Pipeline.Compact;
using Dloral.Tests.Support;
using TorchSharp;

namespace Dloral.Tests;

/// <summary>CPU capabilities from /proc/cpuinfo, and the warning an emulated-bfloat16 run gets.</summary>
[Collection("DloralEndToEnd")]
public class CpuFeaturesTests
{
    [Fact]
    public void Parses_the_model_and_flags_of_the_first_processor()
    {
        var epyc = CpuFeatures.Parse([
            "processor\t: 0", "vendor_id\t: AuthenticAMD", "model name\t: AMD EPYC",
            "flags\t\t: fpu sse sse2 avx fma avx2 f16c", "", "processor\t: 1", "model name\t: other", "flags\t\t: avx512f avx512_bf16"]);
        Assert.Equal("AMD EPYC", epyc.ModelName);
        Assert.Equal("AVX2", epyc.VectorUnit);
        Assert.False(epyc.HasNativeBFloat16);
        Assert.Equal("AMD EPYC, AVX2, no native bfloat16", epyc.Describe());

        var xeon = CpuFeatures.Parse(["model name\t: Intel(R) Xeon(R) Platinum 8481C", "flags\t\t: avx2 avx512f amx_tile amx_bf16"]);
        Assert.True(xeon.HasNativeBFloat16);
        Assert.Equal("AVX-512", xeon.VectorUnit);

        var unknown = CpuFeatures.Read(Path.Combine(Path.GetTempPath(), "no-such-cpuinfo-" + Guid.NewGuid()));
        Assert.False(unknown.Known);
        Assert.Null(unknown.HasNativeBFloat16);
        Assert.Equal("unknown CPU", unknown.Describe());
        if (File.Exists("/proc/cpuinfo")) Assert.True(CpuFeatures.Current.Known, "this Linux machine's /proc/cpuinfo has flags");
    }

    [Fact]
    public void A_bfloat16_upscale_warns_exactly_when_the_cpu_has_no_native_bfloat16()
    {
        using var media = new TestMedia();
        var input = media.Video("in.mkv", 16, 12, "25", frames: 1, codec: "ffv1");
        var options = new UpscaleOptions { Model = GoldenData.ShippedCompactWeights, Scale = 4, Dloral = new DloralVideoOptions { MinimumProcessSide = 64 } };
        var fp32 = Upscaler.Run(input, media.PathOf("fp32.mkv"), options);
        Assert.DoesNotContain(fp32.Warnings, w => w.Contains("bfloat16", StringComparison.Ordinal));
        var bf16 = Upscaler.Run(input, media.PathOf("bf16.mkv"), options with { Dloral = options.Dloral with { DType = torch.ScalarType.BFloat16 } });
        bool warned = bf16.Warnings.Any(w => w.Contains("bfloat16 is emulated", StringComparison.Ordinal));
        Assert.Equal(CpuFeatures.Current.HasNativeBFloat16 == false, warned);
    }
}
