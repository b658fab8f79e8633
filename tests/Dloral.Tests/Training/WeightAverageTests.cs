using Dloral.Training;
using Dloral.Tests.Support;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Tests.Training;

/// <summary>The moving average of the trained weights (optimizer.ema_decay): its update rule with warm-up, swapping it in and out, saving it.</summary>
public class WeightAverageTests
{
    private static NamedParameter Param(string name, params float[] values) => new(name, new Parameter(tensor(values)));

    [Fact]
    public void The_average_follows_the_warmed_up_decay_and_restores_the_trained_weights_exactly()
    {
        var a = Param("a", 1f, 2f);
        var b = Param("b", -4f);
        using var average = new WeightAverage([a, b], decay: 0.5);
        Assert.Equal(0.1, average.NextDecay, 12); // (1+0)/(10+0) < 0.5

        using (no_grad()) { a.Param.copy_(tensor(new[] { 11f, 12f })); b.Param.copy_(tensor(new[] { 6f })); }
        average.Update([a, b]);
        // 0.1·start + 0.9·new
        TensorAssert.Close(tensor(new[] { 10f, 11f }), average["a"], 1e-6, 1e-6, "a");
        TensorAssert.Close(tensor(new[] { 5f }), average["b"], 1e-6, 1e-6, "b");
        Assert.Equal(1, average.Updates);
        for (int i = 0; i < 20; i++) average.Update([a, b]);
        Assert.Equal(0.5, average.NextDecay, 12); // warm-up over: the nominal decay

        using (no_grad()) a.Param.copy_(tensor(new[] { 100f, 200f }));
        using (average.Apply([a, b]))
        {
            TensorAssert.Equal(average["a"], a.Param.detach(), "a averaged");
            TensorAssert.Equal(average["b"], b.Param.detach(), "b averaged");
        }
        TensorAssert.Equal(tensor(new[] { 100f, 200f }), a.Param.detach(), "a restored");
        TensorAssert.Equal(tensor(new[] { 6f }), b.Param.detach(), "b restored");
    }

    [Fact]
    public void A_saved_average_loads_with_its_values_and_update_count_and_a_mismatched_file_is_refused()
    {
        var dir = Directory.CreateTempSubdirectory("dloral-ema-").FullName;
        try
        {
            var a = Param("a", 1f, 2f);
            using var average = new WeightAverage([a], 0.9);
            using (no_grad()) a.Param.add_(1);
            average.Update([a]);
            average.Update([a]);
            var file = Path.Combine(dir, WeightAverage.FileName);
            average.Save(file);

            using var loaded = new WeightAverage([Param("a", 0f, 0f)], 0.9);
            loaded.Load(file);
            Assert.Equal(2, loaded.Updates);
            TensorAssert.Equal(average["a"], loaded["a"], "a");

            using var other = new WeightAverage([Param("c", 0f)], 0.9);
            var e = Assert.Throws<InvalidDataException>(() => other.Load(file));
            Assert.Contains("missing 1: c", e.Message);
            using var wrongShape = new WeightAverage([Param("a", 0f, 0f, 0f)], 0.9);
            Assert.Throws<InvalidDataException>(() => wrongShape.Load(file));
            Assert.Throws<ArgumentOutOfRangeException>(() => new WeightAverage([a], 1.0));
        }
        finally { Directory.Delete(dir, true); }
    }
}
