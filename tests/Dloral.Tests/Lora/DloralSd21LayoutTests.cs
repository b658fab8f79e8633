using Dloral.Diffusion;
using Dloral.Lora;
using Dloral.Nn;
using Dloral.Tests.Support;
using static TorchSharp.torch;

namespace Dloral.Tests.Lora;

/// <summary>The full-size DLoRAL UNet layout (SD 2.1-base + 8-channel conv_in + six rank-4 adapters), built on the meta device.</summary>
public class DloralSd21LayoutTests
{
    [Fact]
    public void Full_size_DLoRAL_UNet_has_the_official_state_dict_names_shapes_order_and_target_lists()
    {
        TorchRuntime.Initialize();
        using var cfgDoc = GoldenData.Json("sd21_reference", "unet_config.json");
        using var unet = new UNet2DCondition(UNet2DConditionConfig.FromJson(cfgDoc.RootElement.GetProperty("config")), ModelOptions.Meta);
        DloralUnet.WidenConvIn(unet);
        var targets = DloralAdapters.TargetsOf(unet);
        DloralAdapters.Inject(unet, targets, rankQuality: 4, rankConsistency: 4);

        using var doc = GoldenData.Json("sd21_reference", "dloral_unet_params.json");
        var lists = doc.RootElement.GetProperty("lora_module_lists");
        foreach (var (key, adapter) in new[]
                 {
                     ("unet_lora_encoder_modules_quality", DloralAdapters.EncoderQuality), ("unet_lora_decoder_modules_quality", DloralAdapters.DecoderQuality),
                     ("unet_lora_others_modules_quality", DloralAdapters.OthersQuality), ("unet_lora_encoder_modules_consistency", DloralAdapters.EncoderConsistency),
                     ("unet_lora_decoder_modules_consistency", DloralAdapters.DecoderConsistency), ("unet_lora_others_modules_consistency", DloralAdapters.OthersConsistency),
                 })
            Assert.Equal(lists.GetProperty(key).EnumerateArray().Select(e => e.GetString()), targets.For(adapter));
        Assert.Equal((94, 148, 16), (targets.EncoderQuality.Count, targets.DecoderQuality.Count, targets.OthersQuality.Count));

        var expected = doc.RootElement.GetProperty("params").EnumerateArray()
            .Select(e => (Name: e.GetProperty("name").GetString()!, Shape: e.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray())).ToList();
        var actual = unet.state_dict().Select(kv => (Name: kv.Key, Shape: kv.Value.shape)).ToList();
        Assert.Equal(1718, expected.Count);
        Assert.Equal(expected.Select(e => e.Name), actual.Select(a => a.Name)); // same names in the same order
        var wrong = expected.Zip(actual).Where(p => !p.First.Shape.SequenceEqual(p.Second.Shape)).Select(p => p.First.Name).ToList();
        Assert.True(wrong.Count == 0, $"shape mismatches: {string.Join(", ", wrong.Take(10))}");
        Assert.Equal(874_033_956L, unet.state_dict().Values.Sum(t => t.numel()));
    }
}
