using Dloral.Diffusion;
using Dloral.Tests.Support;
using Dloral.Training;
using Dloral.Training.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Tests.Training;

public class LossTests
{
    /// <summary>A smooth, textured RGB image [1,3,h,w] in [−1,1], shifted by (dx, dy) pixels (sub-pixel allowed).</summary>
    private static Tensor Pattern(int h, int w, double dx, double dy)
    {
        using var scope = NewDisposeScope();
        var y = arange(h, dtype: ScalarType.Float32).view(h, 1) - dy;
        var x = arange(w, dtype: ScalarType.Float32).view(1, w) - dx;
        var r = (x / 5).sin() * (y / 7).cos();
        var g = ((x + y) / 9).sin();
        var b = ((x - 2 * y) / 11).cos();
        return (stack([r, g, b]).unsqueeze(0) * 0.8).MoveToOuterDisposeScope();
    }

    [Fact]
    public void Temporal_loss_has_a_gradient_and_rewards_motion_consistent_predictions()
    {
        var loss = new TemporalLoss();
        using var gtPrev = Pattern(64, 64, 0, 0);
        using var gtCur = Pattern(64, 64, 2, 1);
        using var guide = loss.Guide(gtPrev, gtCur);
        Assert.True(guide.Valid.mean().item<float>() > 0.5f, "most pixels should be valid for a small translation");

        using var predPrev = (gtPrev + 0.05 * randn(gtPrev.shape, generator: new Generator(1))).detach().requires_grad_(true);
        using var predCur = (gtCur + 0.05 * randn(gtCur.shape, generator: new Generator(2))).detach().requires_grad_(true);
        using var l = TemporalLoss.Compute(predPrev, predCur, guide);
        l.backward();
        Assert.True(predPrev.grad!.abs().sum().item<float>() > 0, "no gradient reaches the previous prediction");
        Assert.True(predCur.grad!.abs().sum().item<float>() > 0, "no gradient reaches the current prediction");

        // Consistent predictions (the ground truth) cost less than a static (frozen-frame) pair.
        using var consistent = TemporalLoss.Compute(gtPrev, gtCur, guide);
        using var frozen = TemporalLoss.Compute(gtPrev, gtPrev, guide);
        Assert.True(consistent.item<float>() < 0.5f * frozen.item<float>(), $"consistent {consistent.item<float>()} vs frozen {frozen.item<float>()}");
    }

    [Fact]
    public void Relative_temporal_loss_is_zero_at_the_ground_truth_and_penalises_a_static_output()
    {
        var loss = new TemporalLoss();
        using var gtPrev = Pattern(64, 64, 0, 0);
        using var gtCur = Pattern(64, 64, 2, 1);
        using var guide = loss.Guide(gtPrev, gtCur);
        using var atTruth = TemporalLoss.Compute(gtPrev, gtCur, guide, null, gtPrev, gtCur);
        Assert.True(atTruth.item<float>() < 1e-7f, $"ground truth costs {atTruth.item<float>()}");
        // An output that is the previous one warped (perfectly "consistent", but not the truth) has a lower absolute loss
        // than the truth itself, and a higher relative one.
        using var blurPrev = nn.functional.avg_pool2d(gtPrev, 5, 1, 2, count_include_pad: false);
        using var copied = Dloral.Metrics.FlowWarping.Warp(blurPrev, guide.FlowCurToPrev);
        using var absTruth = TemporalLoss.Compute(gtPrev, gtCur, guide);
        using var absCopy = TemporalLoss.Compute(blurPrev, copied, guide);
        using var relCopy = TemporalLoss.Compute(blurPrev, copied, guide, null, gtPrev, gtCur);
        Assert.True(absCopy.item<float>() < absTruth.item<float>(), $"absolute: copy {absCopy.item<float>()} vs truth {absTruth.item<float>()}");
        Assert.True(relCopy.item<float>() > atTruth.item<float>() + 1e-4f, $"relative: copy {relCopy.item<float>()}");
        using var frozen = TemporalLoss.Compute(gtPrev, gtPrev, guide, null, gtPrev, gtCur);
        Assert.True(frozen.item<float>() > 1e-3f);
        using var predCur = gtCur.detach().clone().requires_grad_(true);
        using var l = TemporalLoss.Compute(blurPrev, predCur, guide, null, gtPrev, gtCur);
        l.backward();
        Assert.True(predCur.grad!.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void Perceptual_loss_is_zero_for_identical_images_and_differentiable()
    {
        using var perceptual = PerceptualLoss.Load();
        using var a = Pattern(64, 64, 0, 0);
        using var same = perceptual.Compute(a, a);
        Assert.True(same.item<float>() < 1e-6f, $"identical images give {same.item<float>()}");
        using var pred = (a + 0.2 * randn(a.shape, generator: new Generator(3))).clamp(-1, 1).detach().requires_grad_(true);
        using var d = perceptual.Compute(pred, a);
        Assert.True(d.item<float>() > 1e-3f);
        d.backward();
        Assert.True(pred.grad!.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void Csd_loss_vanishes_without_guidance_signal_and_has_a_gradient_otherwise()
    {
        var folder = DiffusersFolder.Open(GoldenData.PathOf("tiny_sd"));
        using var prompts = PromptEncoder.FromDiffusersFolder(GoldenData.PathOf("tiny_sd"));
        using var csd = new CsdLoss(folder.LoadUNet(), DdpmSchedule.FromConfigFile(folder.ComponentFile("scheduler", "scheduler_config.json")));
        Assert.Equal(20, csd.MinStep);
        Assert.Equal(500, csd.MaxStep);
        using var pos = prompts.Encode("a photo of a cat");
        using var neg = prompts.Encode("painting, blurring, lowres");
        using var z = (randn(2, 4, 8, 8, generator: new Generator(5)) * 0.5).requires_grad_(true);
        using var noise = randn(2, 4, 8, 8, generator: new Generator(6));

        // Same prompt on both branches: ε_cfg = ε_uncond, so x̂_real = x̂_fake and the loss is 0 (up to batch-position rounding).
        using (var zero = csd.Compute(z, pos, pos, noise, new Generator(7)))
            Assert.True(zero.item<float>() < 1e-9f, $"same prompts give {zero.item<float>()}");

        using var l = csd.Compute(z, pos, neg, noise, new Generator(7));
        Assert.True(float.IsFinite(l.item<float>()) && l.item<float>() > 0);
        l.backward();
        Assert.True(z.grad!.abs().sum().item<float>() > 0);
        Assert.All(csd.Teacher.parameters(), p => Assert.True(p.grad is null, "the teacher must stay frozen"));
        // mse(z, stopgrad(z − g)) = mean(g²) and ∂/∂z = 2g/N: the gradient direction is the CSD direction.
        var g = z.grad! * (z.numel() / 2.0);
        Assert.Equal(l.item<float>(), g.square().mean().item<float>(), 3);
    }

    [Fact]
    public void AdamW_matches_torch_AdamW_and_skips_parameters_without_gradients()
    {
        using var p1 = new TorchSharp.Modules.Parameter(randn(5, 3, generator: new Generator(11)));
        using var p2 = new TorchSharp.Modules.Parameter(p1.detach().clone());
        using var frozen = new TorchSharp.Modules.Parameter(randn(4, generator: new Generator(12)));
        using var frozenBefore = frozen.detach().clone();
        var mine = new AdamWOptimizer(new AdamWOptions { LearningRate = 1e-2, WeightDecay = 0.05 });
        var reference = optim.AdamW([p2], lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.05);
        for (int i = 0; i < 4; i++)
        {
            using var target = randn(5, 3, generator: new Generator((ulong)(20 + i)));
            reference.zero_grad();
            using (var l2 = (p2 - target).square().sum()) l2.backward();
            reference.step();
            using (var l1 = (p1 - target).square().sum()) l1.backward();
            mine.Step([("p1", p1), ("frozen", frozen)]);
            p1.grad = null;
        }
        TensorAssert.Close(p2, p1, 1e-6, 1e-5, "AdamW vs torch.optim.AdamW");
        TensorAssert.Equal(frozenBefore, frozen, "a parameter without gradient must not move");
        Assert.Equal(4, mine.StepsOf("p1"));
        Assert.Equal(0, mine.StepsOf("frozen"));
    }
}

public class LpipsLossTests
{
    private static readonly (int Index, int In, int Out)[] VggConvs =
    [
        (0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256), (14, 256, 256),
        (17, 256, 512), (19, 512, 512), (21, 512, 512), (24, 512, 512), (26, 512, 512), (28, 512, 512),
    ];

    internal static (string Vgg, string Lin) WriteWeights(string dir, double linScale)
    {
        var gen = new Generator(77);
        var vgg = new Dictionary<string, Tensor>();
        foreach (var (i, cin, cout) in VggConvs)
        {
            vgg[$"features.{i}.weight"] = randn([cout, cin, 3, 3], generator: gen) * Math.Sqrt(2.0 / (cin * 9));
            vgg[$"features.{i}.bias"] = zeros(cout);
        }
        var lin = new Dictionary<string, Tensor>();
        int[] channels = [64, 128, 256, 512, 512];
        for (int k = 0; k < 5; k++) lin[$"lin{k}.model.1.weight"] = rand([1, channels[k], 1, 1], generator: gen) * linScale;
        var vggPath = Path.Combine(dir, "vgg16.safetensors");
        var linPath = Path.Combine(dir, $"lin{linScale}.safetensors");
        Dloral.Checkpoints.SafeTensorsWriter.Save(vggPath, vgg);
        Dloral.Checkpoints.SafeTensorsWriter.Save(linPath, lin);
        return (vggPath, linPath);
    }

    [Fact]
    public void Lpips_vgg_from_supplied_weights_is_a_differentiable_distance_linear_in_its_heads()
    {
        var dir = Directory.CreateTempSubdirectory("dloral-lpips-").FullName;
        try
        {
            var (vgg, lin1) = WriteWeights(dir, 1.0);
            var (_, lin2) = WriteWeights(dir, 2.0);
            using var lpips1 = LpipsLoss.Load(vgg, lin1);
            using var lpips2 = LpipsLoss.Load(vgg, lin2);
            using var a = rand([1, 3, 48, 48], generator: new Generator(1)) * 2 - 1;
            using var b = (a + 0.3 * randn([1, 3, 48, 48], generator: new Generator(2))).clamp(-1, 1);
            using (var same = lpips1.Compute(a, a)) Assert.True(same.item<float>() < 1e-9f);
            using var pred = b.detach().requires_grad_(true);
            using var d1 = lpips1.Compute(pred, a);
            using var d2 = lpips2.Compute(b, a);
            Assert.True(d1.item<float>() > 0);
            Assert.Equal(2 * d1.item<float>(), d2.item<float>(), 4);
            d1.backward();
            Assert.True(pred.grad!.abs().sum().item<float>() > 0);

            File.Delete(lin1);
            Dloral.Checkpoints.SafeTensorsWriter.Save(lin1, new Dictionary<string, Tensor> { ["lin0.model.1.weight"] = ones(1, 64, 1, 1) });
            var e = Assert.Throws<InvalidDataException>(() => LpipsLoss.Load(vgg, lin1));
            Assert.Contains("lin4.model.1.weight", e.Message, StringComparison.Ordinal);
        }
        finally { Directory.Delete(dir, true); }
    }
}
