using System.Text.Json;
using Dloral.Diffusion;
using Dloral.Lora;
using Dloral.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Lora;

/// <summary>Golden parity for DLoRAL's adapter layout on the tiny UNet (golden lora/ case).</summary>
public class DloralLoraGoldenTests
{
    private readonly ITestOutputHelper _out;

    public DloralLoraGoldenTests(ITestOutputHelper output)
    {
        _out = output;
        TorchRuntime.Initialize();
    }

    private void Check(Tensor expected, Tensor actual, string what)
    {
        _out.WriteLine($"{what}: max |diff| {TensorAssert.MaxAbsDiff(expected, actual):G3}");
        TensorAssert.Close(expected, actual, 1e-5, 1e-4, what);
    }

    internal static DloralTargetModules GoldenTargets()
    {
        using var doc = GoldenData.Json("lora", "case.json");
        var lists = doc.RootElement.GetProperty("lora_module_lists");
        IReadOnlyList<string> L(string key) => lists.GetProperty(key).EnumerateArray().Select(e => e.GetString()!).ToList();
        return new DloralTargetModules(
            L("unet_lora_encoder_modules_quality"), L("unet_lora_decoder_modules_quality"), L("unet_lora_others_modules_quality"),
            L("unet_lora_encoder_modules_consistency"), L("unet_lora_decoder_modules_consistency"), L("unet_lora_others_modules_consistency"));
    }

    /// <summary>The tiny UNet with 8-channel conv_in and the six adapters, every tensor from the golden peft state_dict (strict).</summary>
    internal static UNet2DCondition LoadGoldenLoraUNet()
    {
        var unet = UNet2DCondition.FromConfigFile(GoldenData.PathOf("tiny_unet", "unet", "config.json"));
        DloralUnet.Prepare(unet, GoldenTargets());
        using var weights = GoldenData.Open("lora", "unet_lora_state_dict.safetensors");
        StateDictLoader.Load(unet, weights);
        unet.eval();
        return unet;
    }

    [Fact]
    public void Reference_rule_reproduces_the_golden_target_lists()
    {
        using var unet = UNet2DCondition.FromConfigFile(GoldenData.PathOf("tiny_unet", "unet", "config.json"));
        DloralUnet.WidenConvIn(unet);
        var computed = DloralAdapters.TargetsOf(unet);
        var golden = GoldenTargets();
        foreach (var name in DloralAdapters.AddOrder)
            Assert.Equal(golden.For(name), computed.For(name));
        Assert.Equal("conv_in", computed.EncoderConsistency[0]);
        Assert.Contains("conv_out", computed.DecoderQuality);
        Assert.Equal((93, 148, 16), (computed.EncoderQuality.Count, computed.DecoderQuality.Count, computed.OthersQuality.Count));
    }

    [Fact]
    public void Golden_state_dict_loads_strictly_with_PEFT_names()
    {
        using var unet = LoadGoldenLoraUNet();
        var ours = unet.state_dict().Keys.ToHashSet();
        using var weights = GoldenData.Open("lora", "unet_lora_state_dict.safetensors");
        Assert.Equal(weights.Entries.Select(e => e.Key).ToHashSet(), ours);
        Assert.Contains("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.default_encoder_quality.weight", ours);
        Assert.Contains("conv_in.base_layer.weight", ours);
        using var scope = NewDisposeScope();
        TensorAssert.Equal(weights.Load("conv_in.lora_A.default_encoder_consistency.weight"),
            unet.state_dict()["conv_in.lora_A.default_encoder_consistency.weight"], "conv_in lora_A");
    }

    [Fact]
    public void Stages_match_reference_unmerged_and_merged()
    {
        using var unet = LoadGoldenLoraUNet();
        using var golden = GoldenData.Open("lora", "case_lora.safetensors");
        using var scope = NewDisposeScope();
        using var guard = inference_mode();
        var sample = golden.Load("in.sample");
        var t = golden.Load("in.timestep");
        var ctx = golden.Load("in.encoder_hidden_states");
        Tensor Run() => unet.call(sample, t, ctx);

        LoraModel.SetAdapters(unet, [DloralAdapters.OthersConsistency]);
        Check(golden.Load("out.as_constructed"), Run(), "as_constructed");

        DloralAdapters.Activate(unet, detail: 0);
        var stage0 = Run();
        Check(golden.Load("out.stage0"), stage0, "stage0");

        DloralAdapters.Activate(unet, detail: 1);
        var stage1 = Run();
        Check(golden.Load("out.stage1"), stage1, "stage1");

        LoraModel.DisableAdapters(unet);
        Check(golden.Load("out.adapters_disabled"), Run(), "adapters_disabled");
        LoraModel.EnableAdapters(unet);

        foreach (var (stage, detail) in new[] { (0, 0.0), (1, 1.0) })
        {
            DloralAdapters.Activate(unet, detail);
            LoraModel.Merge(unet);
            Check(golden.Load($"out.merged_stage{stage}"), Run(), $"merged_stage{stage}");
            var sd = unet.state_dict();
            foreach (var key in golden.Entries.Select(e => e.Key).Where(k => k.StartsWith($"merged_stage{stage}.", StringComparison.Ordinal)))
            {
                var module = key[$"merged_stage{stage}.".Length..^".weight".Length];
                Check(golden.Load(key), sd[$"{module}.base_layer.weight"], key);
            }
            LoraModel.Unmerge(unet);
        }
        // Unmerged again: back to the plain stage-1 numbers.
        DloralAdapters.Activate(unet, detail: 1);
        Check(stage1, Run(), "stage1 after unmerge");
    }

    [Fact]
    public void Detail_scale_interpolates_quality_adapters()
    {
        using var unet = LoadGoldenLoraUNet();
        using var golden = GoldenData.Open("lora", "case_lora.safetensors");
        using var scope = NewDisposeScope();
        using var guard = inference_mode();
        var sample = golden.Load("in.sample");
        var t = golden.Load("in.timestep");
        var ctx = golden.Load("in.encoder_hidden_states");

        // detail 0 in "stage 1" = stage 0; detail 2 differs from stage 1 more than stage 1 differs from stage 0 direction-wise.
        LoraModel.SetAdapters(unet, DloralAdapters.AddOrder, [0, 0, 0, 1, 1, 1]);
        TensorAssert.Close(golden.Load("out.stage0"), unet.call(sample, t, ctx), 1e-5, 1e-4, "quality weight 0 = stage0");
        DloralAdapters.Activate(unet, detail: 2.0);
        var strong = unet.call(sample, t, ctx);
        var s0 = golden.Load("out.stage0");
        var s1 = golden.Load("out.stage1");
        double d1 = (s1 - s0).norm().item<float>();
        double d2 = (strong - s0).norm().item<float>();
        Assert.InRange(d2 / d1, 1.5, 3.0); // roughly linear in the quality weight for small LoRA deltas
        // Merged with detail 2 equals unmerged with detail 2.
        LoraModel.Merge(unet);
        TensorAssert.Close(strong, unet.call(sample, t, ctx), 1e-5, 1e-4, "merged detail 2");
    }
}
