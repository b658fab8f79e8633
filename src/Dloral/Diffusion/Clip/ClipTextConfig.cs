using System.Text.Json;

namespace Dloral.Diffusion.Clip;

/// <summary>
/// The architecture keys of a transformers <c>CLIPTextConfig</c> (text_encoder/config.json), with
/// transformers 4.28's defaults for missing keys. SD 2.1-base: 23 layers, 1024 wide, 16 heads,
/// <c>hidden_act "gelu"</c> (exact erf GELU).
/// </summary>
public sealed record ClipTextConfig(
    int VocabSize = 49408,
    int HiddenSize = 512,
    int IntermediateSize = 2048,
    int NumHiddenLayers = 12,
    int NumAttentionHeads = 8,
    int MaxPositionEmbeddings = 77,
    double LayerNormEps = 1e-5,
    string HiddenAct = "quick_gelu")
{
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>Checks the values the modules rely on.</summary>
    public void Validate(string source)
    {
        var problems = new List<string>();
        if (VocabSize <= 0) problems.Add($"vocab_size {VocabSize} must be positive");
        if (HiddenSize <= 0) problems.Add($"hidden_size {HiddenSize} must be positive");
        if (IntermediateSize <= 0) problems.Add($"intermediate_size {IntermediateSize} must be positive");
        if (NumHiddenLayers <= 0) problems.Add($"num_hidden_layers {NumHiddenLayers} must be positive");
        if (MaxPositionEmbeddings <= 0) problems.Add($"max_position_embeddings {MaxPositionEmbeddings} must be positive");
        if (NumAttentionHeads <= 0 || HiddenSize % NumAttentionHeads != 0)
            problems.Add($"hidden_size {HiddenSize} is not divisible by num_attention_heads {NumAttentionHeads}");
        if (!ClipMlp.SupportedActivations.Contains(HiddenAct))
            problems.Add($"hidden_act '{HiddenAct}' is not supported (supported: {string.Join(", ", ClipMlp.SupportedActivations)})");
        if (problems.Count > 0)
            throw new InvalidDataException($"{source}: invalid CLIP text config: {string.Join("; ", problems)}");
    }

    /// <summary>Reads a text_encoder config.json (a <c>{"config": {...}}</c> wrapper is also accepted).</summary>
    public static ClipTextConfig FromFile(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"text encoder config not found: {path}", path);
        try
        {
            return FromJson(File.ReadAllText(path), path);
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            throw new InvalidDataException($"{path}: invalid text encoder config: {e.Message}", e);
        }
    }

    public static ClipTextConfig FromJson(string json, string source = "config.json")
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        if (root.TryGetProperty("config", out var inner) && inner.ValueKind == JsonValueKind.Object)
            root = inner;
        // A full CLIPModel config nests the text tower under text_config.
        if (root.TryGetProperty("text_config", out var tc) && tc.ValueKind == JsonValueKind.Object)
            root = tc;
        var d = new ClipTextConfig();
        int I(string k, int def) => root.TryGetProperty(k, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : def;
        double D(string k, double def) => root.TryGetProperty(k, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : def;
        string S(string k, string def) => root.TryGetProperty(k, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : def;
        var config = new ClipTextConfig(
            I("vocab_size", d.VocabSize),
            I("hidden_size", d.HiddenSize),
            I("intermediate_size", d.IntermediateSize),
            I("num_hidden_layers", d.NumHiddenLayers),
            I("num_attention_heads", d.NumAttentionHeads),
            I("max_position_embeddings", d.MaxPositionEmbeddings),
            D("layer_norm_eps", d.LayerNormEps),
            S("hidden_act", d.HiddenAct));
        config.Validate(source);
        return config;
    }
}
