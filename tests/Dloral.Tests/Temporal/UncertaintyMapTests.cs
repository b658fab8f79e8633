using Dloral.Temporal;
using Dloral.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Tests.Temporal;

public class UncertaintyMapTests
{
    public UncertaintyMapTests() => TorchRuntime.Initialize();

    [Theory]
    [InlineData("T2")]
    [InlineData("T3")]
    [InlineData("ties")]
    public void Frame_difference_mask_matches_reference(string name)
    {
        using var f = GoldenData.Open("pipeline_bits", "case_pipeline_bits.safetensors");
        using var scope = NewDisposeScope();
        var mask = UncertaintyMap.FrameDifferenceMask(f.Load($"mask.{name}.in.frames"));
        var expected = f.Load($"mask.{name}.out.mask");
        TensorAssert.Equal(expected, mask, name);
        // Non-trivial: both values occur.
        Assert.True(expected.sum().item<float>() > 0 && expected.sum().item<float>() < expected.numel());
    }

    [Fact]
    public void Gray_chain_matches_PIL_and_the_reference_map()
    {
        using var f = GoldenData.Open("pipeline_bits", "case_pipeline_bits.safetensors");
        using var scope = NewDisposeScope();
        var rgb = f.Load("gray.in.rgb_u8");
        var gray = UncertaintyMap.GrayU8(rgb);
        TensorAssert.Equal(f.Load("gray.out.gray_u8"), gray, "gray_u8 (PIL convert('L'))");
        var small = UncertaintyMap.GraySmall(gray);
        TensorAssert.Equal(f.Load("gray.out.gray_small"), small, "gray_small");
        TensorAssert.Equal(f.Load("gray.out.uncertainty_map"), UncertaintyMap.ForWindow(small), "uncertainty_map");
        TensorAssert.Equal(f.Load("gray.out.uncertainty_map"), UncertaintyMap.FromRgbFrames(rgb), "uncertainty_map from rgb");
    }

    [Fact]
    public void Window_of_three_repeats_the_mask_over_all_frames()
    {
        using var scope = NewDisposeScope();
        var frames = rand(3, 1, 8, 8, generator: new Generator(5));
        var map = UncertaintyMap.ForWindow(frames);
        Assert.Equal(new long[] { 1, 2, 1, 8, 8 }, map.shape);
        TensorAssert.Equal(map[0, 0], map[0, 1]);
        TensorAssert.Equal(UncertaintyMap.FrameDifferenceMask(frames), map[0, 0]);
    }

    [Fact]
    public void Nearest_downsample_takes_pixel_8i_and_floors_odd_sizes()
    {
        using var scope = NewDisposeScope();
        var g = arange(0, 20 * 27, dtype: ScalarType.Int32).remainder(251).to_type(ScalarType.Byte).view(20, 27);
        var small = UncertaintyMap.GraySmall(g);
        Assert.Equal(new long[] { 1, 2, 3 }, small.shape);
        Assert.Equal(g[8, 16].item<byte>() / 255f, small[0, 1, 2].item<float>());
    }
}
