using Dloral.Metrics;
using Dloral.Training;
using Dloral.Training.Losses;
using static TorchSharp.torch;

namespace Dloral.Tests.Training;

public class ReconstructionLossTests
{
    // Unit BT.601 luma direction in RGB.
    private static readonly double[] U = [.. ColorSpace.Rec601LumaWeights.Select(x => x / Math.Sqrt(ColorSpace.Rec601LumaWeights.Sum(v => v * v)))];

    private static Tensor Along(double[] axis, Tensor amplitude) =>
        cat([amplitude * axis[0], amplitude * axis[1], amplitude * axis[2]], 1);

    [Fact]
    public void Chroma_weight_one_is_the_plain_mse()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(7);
        var p = randn([2, 3, 16, 24], generator: gen);
        var t = randn([2, 3, 16, 24], generator: gen);
        Assert.Equal(nn.functional.mse_loss(p, t).item<float>(), ReconstructionLoss.L2(p, t, 1.0).item<float>());
        Assert.Equal(ReconstructionLoss.L2(p, t).item<float>(), ReconstructionLoss.L2(p, t, 1.0).item<float>());
    }

    [Fact]
    public void A_luma_error_keeps_its_weight_and_a_chroma_error_is_scaled()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(11);
        var t = rand([1, 3, 8, 8], generator: gen);
        var amplitude = randn([1, 1, 8, 8], generator: gen) * 0.1;
        // An error along the luma axis, and one orthogonal to it (a chroma error: it leaves BT.601 Y unchanged).
        double[] chroma = [U[1], -U[0], 0];
        double n = Math.Sqrt(chroma[0] * chroma[0] + chroma[1] * chroma[1]);
        chroma = [chroma[0] / n, chroma[1] / n, 0];
        var lumaError = t + Along(U, amplitude);
        var chromaError = t + Along(chroma, amplitude);
        var y = ColorSpace.RgbToGray(chromaError - t);
        Assert.True(y.abs().max().item<float>() < 1e-7, "the chroma error changes Y");
        foreach (double w in new[] { 0.0, 0.25, 0.6 })
        {
            double mseLuma = nn.functional.mse_loss(lumaError, t).item<float>();
            double mseChroma = nn.functional.mse_loss(chromaError, t).item<float>();
            Assert.Equal(mseLuma, ReconstructionLoss.L2(lumaError, t, w).item<float>(), 1e-6 * mseLuma);
            Assert.Equal(w * mseChroma, ReconstructionLoss.L2(chromaError, t, w).item<float>(), 1e-6 * mseChroma + 1e-12);
            // Mixed: the two parts add, as the split is orthogonal.
            var both = t + Along(U, amplitude) + Along(chroma, amplitude * 0.5);
            double expected = mseLuma + w * 0.25 * mseChroma;
            Assert.Equal(expected, ReconstructionLoss.L2(both, t, w).item<float>(), 1e-5 * expected);
        }
    }

    [Fact]
    public void Chroma_weight_is_validated_in_the_loss_and_the_config()
    {
        using var scope = NewDisposeScope();
        var x = zeros(1, 3, 4, 4);
        Assert.Throws<ArgumentOutOfRangeException>(() => ReconstructionLoss.L2(x, x, -0.5));
        Assert.Throws<ArgumentException>(() => ReconstructionLoss.L2(zeros(1, 4, 4, 4), zeros(1, 4, 4, 4), 0.5));
        var c = TrainingConfig.Load(Path.Combine(Support.GoldenData.RepoRoot, "configs", "compact.json"));
        Assert.Equal(1.0, c.Losses.L2ChromaWeight);
        c.Losses.L2ChromaWeight = 0.25;
        Assert.Contains("\"l2_chroma_weight\": 0.25", c.ToJson());
        Assert.Equal(0.25, TrainingConfig.Parse(c.ToJson()).Losses.L2ChromaWeight);
        c.Losses.L2ChromaWeight = -1;
        var e = Assert.Throws<InvalidDataException>(() => c.Validate("compact.json"));
        Assert.Contains("l2_chroma_weight", e.Message);
    }
}
