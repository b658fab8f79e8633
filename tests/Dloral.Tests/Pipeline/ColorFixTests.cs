using Dloral.Pipeline;
using Dloral.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Pipeline;

public class ColorFixTests(ITestOutputHelper output)
{
    // PIL images are HWC u8; the colour fixes work on [1,3,H,W] floats (torchvision to_tensor).
    private static Tensor ToTensor(Tensor hwcU8) => ColorFix.FromU8(hwcU8.permute(2, 0, 1).unsqueeze(0));

    private static Tensor ToHwc(Tensor nchw) => nchw.squeeze(0).permute(1, 2, 0).contiguous();

    [Theory]
    [InlineData(ColorFixMethod.Adain, "adain")]
    [InlineData(ColorFixMethod.Wavelet, "wavelet")]
    public void Matches_reference_float_and_truncated_u8(ColorFixMethod method, string name)
    {
        TorchRuntime.Initialize();
        using var f = GoldenData.Open("pipeline_bits", "case_pipeline_bits.safetensors");
        using var scope = NewDisposeScope();
        var target = ToTensor(f.Load("color.in.target_u8"));
        var source = ToTensor(f.Load("color.in.source_u8"));
        var raw = method == ColorFixMethod.Adain ? ColorFix.Adain(target, source) : ColorFix.Wavelet(target, source);
        var expected = f.Load($"color.out.{name}_float");
        output.WriteLine($"{name}_float: max abs diff {TensorAssert.MaxAbsDiff(expected, raw):G3}");
        TensorAssert.Close(expected, raw, atol: 1e-6, rtol: 1e-5, what: name + "_float");

        var clamped = ColorFix.Apply(method, target, source);
        var u8 = ToHwc(ColorFix.ToU8Truncating(clamped));
        TensorAssert.Equal(f.Load($"color.out.{name}_u8"), u8, name + "_u8 (truncating, as PIL)");

        // The product path rounds: never below the truncated value, at most one above.
        var rounded = ToHwc(ColorFix.ToU8Rounding(clamped)).to_type(ScalarType.Int32);
        var delta = rounded - u8.to_type(ScalarType.Int32);
        Assert.True(delta.min().item<int>() >= 0 && delta.max().item<int>() == 1);
    }

    [Fact]
    public void None_only_clamps_and_adain_transfers_statistics()
    {
        using var scope = NewDisposeScope();
        var target = rand(1, 3, 16, 20, generator: new Generator(1)).mul(1.2).sub(0.1);
        var source = rand(1, 3, 16, 20, generator: new Generator(2)).mul(0.5).add(0.2);
        TensorAssert.Equal(target.clamp(0, 1), ColorFix.Apply(ColorFixMethod.None, target, source));
        var fixedImg = ColorFix.Adain(target, source);
        TensorAssert.Close(source.mean([2L, 3L]), fixedImg.mean([2L, 3L]), atol: 1e-5, rtol: 0, what: "channel means");
    }

    [Fact]
    public void Topil_truncation_matches_reference()
    {
        using var f = GoldenData.Open("pipeline_bits", "case_pipeline_bits.safetensors");
        using var scope = NewDisposeScope();
        var x = f.Load("topil.in.output_image"); // [3,8,10] in [-1,1]
        var u8 = ColorFix.ToU8Truncating(x * 0.5 + 0.5).permute(1, 2, 0).contiguous();
        TensorAssert.Equal(f.Load("topil.out.u8"), u8, "ToPILImage");
    }
}
