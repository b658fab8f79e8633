using System.Text.Json;
using Dloral.Diffusion;
using Dloral.Nn;
using Dloral.Tests.Support;
using TorchSharp;

namespace Dloral.Tests.Diffusion;

/// <summary>The full-size SD 2.1-base modules, built on the meta device (no memory), have exactly the reference names and shapes.</summary>
public class Sd21ArchitectureTests
{
    private static List<(string Name, long[] Shape)> Expected(string file)
    {
        using var doc = GoldenData.Json("sd21_reference", file);
        return doc.RootElement.GetProperty("params").EnumerateArray()
            .Select(p => (p.GetProperty("name").GetString()!, p.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray()))
            .ToList();
    }

    private static void AssertSameParameters(List<(string Name, long[] Shape)> expected, torch.nn.Module module, string what)
    {
        var actual = module.state_dict().Select(kv => (Name: kv.Key, Shape: kv.Value.shape)).ToList();
        var expectedNames = expected.Select(e => e.Name).ToHashSet();
        var actualNames = actual.Select(a => a.Name).ToHashSet();
        var missing = expectedNames.Except(actualNames).ToList();
        var extra = actualNames.Except(expectedNames).ToList();
        Assert.True(missing.Count == 0 && extra.Count == 0,
            $"{what}: missing {string.Join(", ", missing.Take(10))}; unexpected {string.Join(", ", extra.Take(10))}");
        var shapes = actual.ToDictionary(a => a.Name, a => a.Shape);
        var wrong = expected.Where(e => !shapes[e.Name].SequenceEqual(e.Shape))
            .Select(e => $"{e.Name} [{string.Join(",", shapes[e.Name])}] vs [{string.Join(",", e.Shape)}]").ToList();
        Assert.True(wrong.Count == 0, $"{what}: shape mismatches: {string.Join("; ", wrong.Take(10))}");
        // Same order as the reference state_dict, too (keeps exported files byte-comparable).
        Assert.Equal(expected.Select(e => e.Name), actual.Select(a => a.Name));
    }

    [Fact]
    public void Sd21_unet_has_reference_parameters_on_meta_device()
    {
        using var doc = GoldenData.Json("sd21_reference", "unet_config.json");
        var config = UNet2DConditionConfig.FromJson(doc.RootElement.GetProperty("config"), "sd21_reference/unet_config.json");
        Assert.Equal([5L, 10, 20, 20], config.NumAttentionHeads);
        using var unet = new UNet2DCondition(config, ModelOptions.Meta);
        var expected = Expected("unet_params.json");
        Assert.Equal(686, expected.Count);
        AssertSameParameters(expected, unet, "SD 2.1 UNet");
        Assert.Equal(865_910_724L, unet.parameters().Sum(p => p.numel()));
        Assert.All(unet.parameters(), p => Assert.Equal(DeviceType.META, p.device_type));
    }

    [Fact]
    public void Sd21_vae_has_reference_parameters_on_meta_device()
    {
        using var doc = GoldenData.Json("sd21_reference", "vae_config.json");
        var config = AutoencoderKLConfig.FromJson(doc.RootElement.GetProperty("config"), "sd21_reference/vae_config.json");
        Assert.Equal(0.18215, config.ScalingFactor);
        using var vae = new AutoencoderKL(config, ModelOptions.Meta);
        var expected = Expected("vae_params.json");
        Assert.Equal(248, expected.Count);
        AssertSameParameters(expected, vae, "SD 2.1 VAE");
        Assert.Equal(83_653_863L, vae.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void Resolved_config_builds_the_same_unet()
    {
        using var doc = GoldenData.Json("sd21_reference", "unet_config.json");
        var a = UNet2DConditionConfig.FromJson(doc.RootElement.GetProperty("config"));
        var b = UNet2DConditionConfig.FromJson(doc.RootElement.GetProperty("resolved"));
        Assert.Equal(a.NumAttentionHeads, b.NumAttentionHeads);
        Assert.Equal(a.CrossAttentionDim, b.CrossAttentionDim);
        Assert.Equal(a.BlockOutChannels, b.BlockOutChannels);
        Assert.Equal(a.UseLinearProjection, b.UseLinearProjection);
    }
}
