using Dloral.Temporal;
using Dloral.Tests.Support;
using Dloral.Training;
using Dloral.Training.ClipDatasets;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Dloral.Tests.Training;

[Collection(GlobalRandomCollection.Name)]
public class FlowSupervisionTests(ITestOutputHelper output)
{
    /// <summary>The compact model's CFR sizes (192-channel latents at 1/8, SPyNet on the 1/8 frames).</summary>
    private static readonly CrossFrameRetrievalConfig Compact = new(LatentChannels: 192, DownscaleFactor: 8, EmbedDim: 16, Heads: 2, FlowDownscale: 1, AttentionPool: 2);

    /// <summary>
    /// A [1,3,R,R] region: channels 0/1 linear in x/y (bilinear sampling reproduces them exactly, so any flow error
    /// in either axis shows), channel 2 a smooth texture.
    /// </summary>
    private static Tensor GradientRegion(int r)
    {
        using var scope = NewDisposeScope();
        var ys = arange(r, dtype: float64).view(r, 1).expand(r, r);
        var xs = arange(r, dtype: float64).view(1, r).expand(r, r);
        var c0 = xs * (0.6 / r) + 0.2;
        var c1 = ys * (0.6 / r) + 0.2;
        var c2 = (xs / 9.0).sin() * (ys / 11.0).cos() * 0.25 + ((xs + 2 * ys) / 13.0).sin() * 0.2 + 0.5;
        return stack([c0, c1, c2], 0).unsqueeze(0).to_type(float32).MoveToOuterDisposeScope();
    }

    /// <summary>Frame <c>to</c> warped by the flow (as the CFR warps), compared with frame <c>from</c> per channel in the interior; also the zero-flow error.</summary>
    private static (float[] PerChannel, float All, float ZeroFlow) WarpError(Tensor frames, Tensor flow, int from, int to)
    {
        using var scope = NewDisposeScope();
        long s = frames.shape[3];
        // Interior: pixels whose flow target lies well inside frame `to`.
        int m = (int)Math.Ceiling(flow.abs().max().item<float>()) + 2;
        var warped = FlowWarp.Warp(frames[to].unsqueeze(0), flow.permute(1, 2, 0).unsqueeze(0))[0];
        var diff = (warped - frames[from])[.., m..(int)(s - m), m..(int)(s - m)].abs();
        var zero = (frames[to] - frames[from])[.., m..(int)(s - m), m..(int)(s - m)].abs();
        var per = diff.mean([1, 2]).data<float>().ToArray();
        return (per, diff.mean().item<float>(), zero.mean().item<float>());
    }

    [Fact]
    public void CameraFlow_warps_frame_to_onto_frame_from_for_every_motion_and_dihedral_transform()
    {
        using var testScope = NewDisposeScope();
        const int s = 64, t = 3;
        var motions = new (string Name, CameraMotion Motion)[]
        {
            ("translation", new CameraMotion(2.3, -1.7, 0, 0, 0, 0)),
            ("acceleration", new CameraMotion(-1.1, 0.6, 0.4, -0.3, 0, 0)),
            ("rotation+zoom", new CameraMotion(0.7, -0.4, 0, 0, 1.5, 0.03)),
            ("everything", new CameraMotion(1.9, 1.2, -0.3, 0.2, -1.2, -0.02)),
        };
        (float Linear, float All, float Ratio) worst = (0, 0, 0);
        int cases = 0;
        foreach (var (name, motion) in motions)
        {
            int region = s + 2 * ImageClipDataset.MotionMargin(motion, s, t);
            using var src = GradientRegion(region);
            using var rendered = ImageClipDataset.RenderMotion(src, motion, s, t);
            // Every dihedral index for the asymmetric motions (a wrong axis swap or sign cannot cancel there).
            int[] dihedrals = name is "translation" or "everything" ? [0, 1, 2, 3, 4, 5, 6, 7] : [0, 5];
            foreach (int k in dihedrals)
            {
                using var frames = Dihedral.Apply(rendered, k);
                foreach (var (from, to) in new[] { (1, 0), (2, 1), (0, 2) })
                {
                    using var flow = FlowSupervision.CameraFlow(motion, k, s, region, from, to);
                    Assert.Equal(new long[] { 2, s, s }, flow.shape);
                    Assert.Equal(ScalarType.Float32, flow.dtype);
                    var (per, all, zero) = WarpError(frames, flow, from, to);
                    string what = $"{name}, dihedral {k}, {from}→{to}: per channel [{string.Join(", ", per.Select(v => v.ToString("E2")))}], zero flow {zero:E2}";
                    // The linear channels are reproduced exactly by bilinear sampling: 1e-5 ≈ a flow error of 0.001 px.
                    Assert.True(per[0] < 1e-5f && per[1] < 1e-5f, what);
                    Assert.True(all < 1e-3f, what);
                    Assert.True(zero > 10 * all, what);
                    worst = (Math.Max(worst.Linear, Math.Max(per[0], per[1])), Math.Max(worst.All, all), Math.Max(worst.Ratio, all / zero));
                    cases++;
                }
            }
        }
        output.WriteLine($"{cases} cases: worst mean |warped − frame| linear channels {worst.Linear:E2}, all channels {worst.All:E2}, worst warped/zero-flow ratio {worst.Ratio:F3}");
        // No motion between a frame and itself.
        using var self = FlowSupervision.CameraFlow(motions[3].Motion, 6, s, 100, 2, 2);
        Assert.True(self.abs().max().item<float>() < 1e-4f);
    }

    [Fact]
    public void CameraFlow_of_dataset_clips_aligns_their_frames()
    {
        using var testScope = NewDisposeScope();
        using var media = new MediaFolder();
        media.Image("a.png", ClipDatasetTests.Texture(300, 240, 9));
        // Red = x, green = y exactly (8-bit steps of 1/255 per pixel): bilinear sampling keeps them linear, so
        // these clips check the flow to a few thousandths of a pixel.
        media.Image("ramp.png", "nullsrc=s=250x240,geq=r='X':g='Y':b='128+90*sin(X/11)*cos(Y/13)',format=rgb24");
        var ds = new ImageClipDataset(media.Dir, new ImageClipOptions { Frames = 3, CropSize = 64, Split = SplitPart.All, Augment = true, MaxRotationDeg = 1.5, MaxZoom = 0.02, PhotoScaleRange = [1, 1] });
        var seen = new HashSet<int>();
        (float All, float Ratio) worstClip = (0, 0);
        float worstRamp = 0;
        for (int seed = 0; seed < 16; seed++)
        {
            using var clip = ds.Get(seed % 2, seed);
            seen.Add(clip.DihedralIndex);
            foreach (var (from, to) in new[] { (1, 0), (2, 1) })
            {
                using var flow = FlowSupervision.CameraFlow(clip, from, to);
                var (per, all, zero) = WarpError(clip.Hr, flow, from, to);
                string what = $"seed {seed} '{Path.GetFileName(clip.Source)}' (dihedral {clip.DihedralIndex}, {clip.Motion}), {from}→{to}: warped [{string.Join(", ", per.Select(v => v.ToString("E2")))}], zero flow {zero:E2}";
                if (clip.Source.EndsWith("ramp.png", StringComparison.Ordinal))
                {
                    Assert.True(per[0] < 1e-5f && per[1] < 1e-5f, what);
                    worstRamp = Math.Max(worstRamp, Math.Max(per[0], per[1]));
                }
                Assert.True(all < 2e-3f, what);
                Assert.True(zero > 5 * all, what);
                worstClip = (Math.Max(worstClip.All, all), Math.Max(worstClip.Ratio, all / zero));
            }
        }
        output.WriteLine($"dataset clips, dihedrals {{{string.Join(",", seen.Order())}}}: worst mean |warped − frame| {worstClip.All:E2}, worst warped/zero-flow ratio {worstClip.Ratio:F3}, ramp channels {worstRamp:E2}");
        Assert.True(worstRamp > 0, "no ramp clip was drawn");
        Assert.True(seen.Count >= 4, $"only dihedral indices {string.Join(",", seen)} were drawn");

        // Photos rescaled by the dataset (area / bicubic resampling of the region) align as well; only the
        // resampled texture's interpolation error grows.
        var scaled = new ImageClipDataset(media.Dir, new ImageClipOptions { Frames = 3, CropSize = 64, Split = SplitPart.All, PhotoScaleRange = [0.4, 0.9] });
        for (int seed = 0; seed < 6; seed++)
        {
            using var clip = scaled.Get(seed % 2, seed);
            using var flow = FlowSupervision.CameraFlow(clip, 2, 0);
            var (per, all, zero) = WarpError(clip.Hr, flow, 2, 0);
            Assert.True(all < 3e-3f && zero > 5 * all, $"rescaled seed {seed} (dihedral {clip.DihedralIndex}): warped [{string.Join(", ", per.Select(v => v.ToString("E2")))}], zero flow {zero:E2}");
        }

        // The batch overload stacks the per-clip flows.
        using var c0 = ds.Get(0, 3);
        using var c1 = ds.Get(1, 4);
        var batch = FlowSupervision.CameraFlow([c0, c1], 1, 0);
        Assert.Equal(new long[] { 2, 2, 64, 64 }, batch.shape);
        Assert.True(batch[0].eq(FlowSupervision.CameraFlow(c0, 1, 0)).all().item<bool>() && batch[1].eq(FlowSupervision.CameraFlow(c1, 1, 0)).all().item<bool>());
    }

    [Fact]
    public void EndPointError_resizes_the_true_flow_and_SpyNetFlow_is_the_CFR_flow_with_gradients()
    {
        using var testScope = NewDisposeScope();
        // A constant flow (3,-2) full-res px is (3/8,-2/8) on the 1/8 grid: EPE of zero = its length there.
        using (var constant = tensor(new float[] { 3, -2 }).view(1, 2, 1, 1).expand(2, 2, 64, 96).contiguous())
        using (var zeros = torch.zeros(2, 2, 8, 12))
        using (var epe = FlowSupervision.EndPointError(zeros, constant))
        using (var epeBorder = FlowSupervision.EndPointError(zeros, constant, ignoreBorder: 1))
        {
            double expected = Math.Sqrt(3.0 / 8 * 3.0 / 8 + 2.0 / 8 * 2.0 / 8);
            Assert.Equal(expected, epe.item<float>(), 5);
            Assert.Equal(expected, epeBorder.item<float>(), 5);
        }

        // The true flow of a rotating, zooming camera resized to the grid, against itself: exactly 0, and the
        // gradient there is 0, not NaN.
        var motion = new CameraMotion(2.5, -1.5, 0.2, 0.1, 0.8, 0.01);
        using var trueFlow = FlowSupervision.CameraFlow(motion, 3, 256, 300, 1, 0).unsqueeze(0);
        using var resized = FlowSupervision.ResizeFlow(trueFlow, 32, 32);
        using var pred = resized.clone().requires_grad_(true);
        using var same = FlowSupervision.EndPointError(pred, trueFlow, ignoreBorder: 1);
        Assert.Equal(0f, same.item<float>());
        same.backward();
        Assert.Equal(0f, pred.grad!.abs().max().item<float>());

        // SpyNetFlow is exactly the flow Forward warps with, for the compact config and for a coarser flow grid.
        torch.manual_seed(11);
        foreach (var config in new[] { Compact, Compact with { FlowDownscale = 2 } })
        {
            using var cfr = new CrossFrameRetrieval(config) { EnforceReferenceMinimumSize = false };
            using var frames = torch.rand([1, 2, 3, 256, 256]) * 2 - 1;
            using var latents = torch.randn([1, 2, 192, 32, 32]);
            using var uncertainty = torch.rand([1, 1, 1, 32, 32]);
            var trace = new CrossFrameRetrievalTrace();
            using (no_grad())
            using (cfr.Forward(frames, latents, uncertainty, trace)) { }
            using var viaForward = trace.FlowsForward!.select(1, 0);
            using var direct = FlowSupervision.SpyNetFlow(cfr, frames[.., 1], frames[.., 0]);
            Assert.Equal(new long[] { 1, 2, 32, 32 }, direct.shape);
            Assert.True(direct.eq(viaForward).all().item<bool>(), $"FlowDownscale {config.FlowDownscale}: SpyNetFlow differs from Forward's flow by {direct.sub(viaForward).abs().max().item<float>()}");
            trace.FlowsForward.Dispose();
            trace.FramesDownsampled?.Dispose();
            foreach (var d in trace.Deltas) d.Dispose();

            // The gradient of the EPE reaches every SPyNet level.
            cfr.zero_grad();
            using var loss = FlowSupervision.EndPointError(direct, trueFlow, ignoreBorder: 1);
            loss.backward();
            var grads = cfr.SpyNet.named_parameters().Select(p => (p.name, norm: p.parameter.grad?.norm().item<float>() ?? 0f)).ToList();
            Assert.NotEmpty(grads);
            Assert.All(grads, g => Assert.True(g.norm > 0 && float.IsFinite(g.norm), $"{g.name}: gradient norm {g.norm}"));
            Assert.All(cfr.Attention.parameters(), p => Assert.True(p.grad is null || p.grad.abs().max().item<float>() == 0));
        }

        // Frames whose flow grid is not a multiple of 32 (SPyNet resizes internally): the gradient still arrives.
        using (var cfr = new CrossFrameRetrieval(Compact) { EnforceReferenceMinimumSize = false })
        {
            var small = torch.rand([2, 2, 3, 128, 128]) * 2 - 1;
            var flow = FlowSupervision.SpyNetFlow(cfr, small[.., 1], small[.., 0]);
            Assert.Equal(new long[] { 2, 2, 16, 16 }, flow.shape);
            var smallTrue = FlowSupervision.CameraFlow(motion, 0, 128, 160, 1, 0).unsqueeze(0).expand(2, -1, -1, -1);
            FlowSupervision.EndPointError(flow, smallTrue, ignoreBorder: 1).backward();
            Assert.All(cfr.SpyNet.parameters(), p => Assert.True(p.grad is not null && float.IsFinite(p.grad.norm().item<float>()) && p.grad.norm().item<float>() > 0));
        }
    }

    /// <summary>A smooth random texture [1,3,R,R] (bicubic upsampling of coarse noise), in [0,1].</summary>
    private static Tensor RandomTexture(int r, Generator gen)
    {
        using var scope = NewDisposeScope();
        var coarse = torch.rand([1, 3, r / 12 + 2, r / 12 + 2], generator: gen);
        var fine = torch.rand([1, 3, r / 4 + 2, r / 4 + 2], generator: gen);
        var up = F.interpolate(coarse, [r, r], mode: InterpolationMode.Bicubic, align_corners: false) * 0.7
               + F.interpolate(fine, [r, r], mode: InterpolationMode.Bicubic, align_corners: false) * 0.3;
        return up.clamp(0, 1).MoveToOuterDisposeScope();
    }

    /// <summary>n translation-only pairs (cur = frame 1, prev = frame 0) in [-1,1] with their true flows 1→0.</summary>
    private static (Tensor Cur, Tensor Prev, Tensor Flow) TranslationPairs(int n, int s, Generator gen, Random rng)
    {
        using var scope = NewDisposeScope();
        var curs = new List<Tensor>();
        var prevs = new List<Tensor>();
        var flows = new List<Tensor>();
        for (int i = 0; i < n; i++)
        {
            var motion = new CameraMotion(rng.NextDouble() * 12 - 6, rng.NextDouble() * 12 - 6, 0, 0, 0, 0);
            int region = s + 2 * ImageClipDataset.MotionMargin(motion, s, 2);
            var frames = ImageClipDataset.RenderMotion(RandomTexture(region, gen), motion, s, 2) * 2 - 1;
            curs.Add(frames[1]);
            prevs.Add(frames[0]);
            flows.Add(FlowSupervision.CameraFlow(motion, 0, s, region, 1, 0));
        }
        return (stack(curs).MoveToOuterDisposeScope(), stack(prevs).MoveToOuterDisposeScope(), stack(flows).MoveToOuterDisposeScope());
    }

    [Fact]
    public void A_few_Adam_steps_on_the_EPE_of_translations_reduce_it()
    {
        using var testScope = NewDisposeScope();
        const int s = 256;
        torch.manual_seed(5);
        using var cfr = new CrossFrameRetrieval(Compact) { EnforceReferenceMinimumSize = false };
        using var gen = new Generator(17);
        var rng = new Random(3);
        var (evalCur, evalPrev, evalFlow) = TranslationPairs(4, s, gen, rng);
        var (fitCur, fitPrev, fitFlow) = TranslationPairs(2, s, gen, rng);

        float Epe(Tensor cur, Tensor prev, Tensor flow)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            return FlowSupervision.EndPointError(FlowSupervision.SpyNetFlow(cfr, cur, prev), flow, ignoreBorder: 1).item<float>();
        }

        float ZeroFlowEpe(Tensor flow)
        {
            using var scope = NewDisposeScope();
            return FlowSupervision.EndPointError(torch.zeros(flow.shape[0], 2, s / 8, s / 8), flow, ignoreBorder: 1).item<float>();
        }

        void Step(optim.Optimizer opt, Tensor cur, Tensor prev, Tensor flow)
        {
            using var scope = NewDisposeScope();
            opt.zero_grad();
            FlowSupervision.EndPointError(FlowSupervision.SpyNetFlow(cfr, cur, prev), flow, ignoreBorder: 1).backward();
            opt.step();
        }

        var watch = System.Diagnostics.Stopwatch.StartNew();
        using var opt = torch.optim.Adam(cfr.SpyNet.parameters(), lr: 1e-3);
        // 30 steps on fresh random translations: the held-out EPE falls (mostly by unlearning the random
        // initialisation's large flows; learning real flow takes far more steps).
        float before = Epe(evalCur, evalPrev, evalFlow);
        for (int step = 0; step < 30; step++)
        {
            using var scope = NewDisposeScope();
            var (cur, prev, flow) = TranslationPairs(2, s, gen, rng);
            Step(opt, cur, prev, flow);
        }
        float after = Epe(evalCur, evalPrev, evalFlow);
        // Then fitting one fixed batch must get well below the zero-flow EPE: the gradient points at the true flow.
        float fitZero = ZeroFlowEpe(fitFlow), fitBefore = Epe(fitCur, fitPrev, fitFlow);
        for (int step = 0; step < 50; step++) Step(opt, fitCur, fitPrev, fitFlow);
        float fitAfter = Epe(fitCur, fitPrev, fitFlow);
        output.WriteLine($"held-out EPE (latent px) {before:F4} → {after:F4} after 30 steps (zero flow {ZeroFlowEpe(evalFlow):F4}); " +
                         $"fixed batch {fitBefore:F4} → {fitAfter:F4} after 50 more (zero flow {fitZero:F4}); {watch.Elapsed.TotalSeconds:F1} s");
        Assert.True(after < 0.8f * before, $"held-out EPE {before} → {after}");
        Assert.True(fitAfter < 0.5f * fitZero, $"fixed-batch EPE {fitBefore} → {fitAfter}, zero flow {fitZero}");
    }
}
