using System.Text.Json.Nodes;
using Dloral.Pipeline.Compact;

namespace Dloral.Tests.Support;

/// <summary>The shipped compact config (models/compact) with another pixel-unshuffle factor: latent channels 3·f².</summary>
public static class CompactConfigFiles
{
    public static string ShippedFolder =>
        CompactDloral.FindModelFolder(GoldenData.RepoRoot) ?? throw new DirectoryNotFoundException("models/compact");

    /// <summary>compact.json and unet_config.json text with the codec factor (and its 1/f scaling) set.</summary>
    public static (string CompactJson, string UnetJson) WithFactor(int factor)
    {
        var compact = JsonNode.Parse(File.ReadAllText(Path.Combine(ShippedFolder, "compact.json")))!;
        compact["codec"]!["factor"] = factor;
        compact["codec"]!["scaling_factor"] = 1.0 / factor;
        var unet = JsonNode.Parse(File.ReadAllText(Path.Combine(ShippedFolder, "unet_config.json")))!;
        unet["in_channels"] = 3 * factor * factor;
        unet["out_channels"] = 3 * factor * factor;
        return (compact.ToJsonString(), unet.ToJsonString());
    }
}
