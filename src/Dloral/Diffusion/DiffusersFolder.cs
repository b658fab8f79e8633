using System.Text.Json;
using Dloral.Checkpoints;
using Dloral.Nn;
using static TorchSharp.torch;

namespace Dloral.Diffusion;

/// <summary>
/// A diffusers model folder (e.g. stable-diffusion-2-1-base): <c>model_index.json</c> plus one sub-folder per component
/// (unet/, vae/, text_encoder/, tokenizer/, scheduler/), each with its config and safetensors weights — a single file or
/// shards listed in <c>*.safetensors.index.json</c>, fp32/fp16/bf16 on disk. Weights are converted to the requested dtype
/// while being read into the freshly built module's parameters, so peak memory is the model plus one tensor.
/// </summary>
public sealed class DiffusersFolder
{
    public string Root { get; }

    /// <summary>Components listed in model_index.json: name → (library, class). Null entries (e.g. safety_checker) are skipped.</summary>
    public IReadOnlyDictionary<string, (string Library, string ClassName)> Components { get; }

    private DiffusersFolder(string root, Dictionary<string, (string, string)> components)
    {
        Root = root; Components = components;
    }

    /// <summary>Opens a folder; it must contain model_index.json.</summary>
    public static DiffusersFolder Open(string root)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"diffusers folder not found: {root}");
        var index = Path.Combine(root, "model_index.json");
        if (!File.Exists(index)) throw new FileNotFoundException($"{root} is not a diffusers folder: model_index.json is missing", index);
        var components = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(index));
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name.StartsWith('_') || p.Value.ValueKind != JsonValueKind.Array || p.Value.GetArrayLength() != 2) continue;
                var lib = p.Value[0]; var cls = p.Value[1];
                if (lib.ValueKind == JsonValueKind.String && cls.ValueKind == JsonValueKind.String)
                    components[p.Name] = (lib.GetString()!, cls.GetString()!);
            }
        }
        catch (JsonException e) { throw new InvalidDataException($"{index}: not valid JSON ({e.Message})", e); }
        return new DiffusersFolder(Path.GetFullPath(root), components);
    }

    /// <summary>The component's folder; a clear error when it is absent.</summary>
    public string ComponentPath(string component)
    {
        var dir = Path.Combine(Root, component);
        if (!Directory.Exists(dir))
            throw new DirectoryNotFoundException($"{Root}: component folder '{component}/' is missing" +
                (Components.ContainsKey(component) ? " (model_index.json lists it)" : ""));
        return dir;
    }

    /// <summary>Path of a file inside a component folder; a clear error when it is absent.</summary>
    public string ComponentFile(string component, string fileName)
    {
        var path = Path.Combine(ComponentPath(component), fileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{Root}: '{component}/{fileName}' is missing", path);
        return path;
    }

    /// <summary>
    /// The weight files of a component: <c>{baseName}[.{variant}].safetensors</c>, or the shards named by
    /// <c>{baseName}[.{variant}].safetensors.index.json</c>. Without a variant the plain file is preferred, then fp16.
    /// </summary>
    /// <param name="component">Sub-folder name, e.g. "unet".</param>
    /// <param name="baseName">"diffusion_pytorch_model" (diffusers) or "model" (transformers).</param>
    /// <param name="variant">e.g. "fp16"; null tries the plain name, then "fp16".</param>
    public IReadOnlyList<string> WeightFiles(string component, string baseName = "diffusion_pytorch_model", string? variant = null)
    {
        var dir = ComponentPath(component);
        var variants = variant is null ? new[] { "", ".fp16" } : new[] { "." + variant };
        var tried = new List<string>();
        foreach (var v in variants)
        {
            var single = Path.Combine(dir, $"{baseName}{v}.safetensors");
            if (File.Exists(single)) return [single];
            tried.Add(Path.GetFileName(single));
            var index = single + ".index.json";
            if (File.Exists(index)) return ShardsOf(index);
            tried.Add(Path.GetFileName(index));
        }
        var bin = Path.Combine(dir, $"{baseName}.bin");
        var hint = File.Exists(bin) ? $" ({Path.GetFileName(bin)} exists, but pickled .bin weights are not loaded: convert to safetensors)" : "";
        throw new FileNotFoundException($"{Root}: no weights for '{component}': looked for {string.Join(", ", tried)}{hint}", Path.Combine(dir, tried[0]));
    }

    /// <summary>Reads a sharded checkpoint index: {"weight_map": {tensor: shard file}} → the distinct shard paths.</summary>
    public static IReadOnlyList<string> ShardsOf(string indexPath)
    {
        var dir = Path.GetDirectoryName(indexPath)!;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(indexPath));
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{indexPath}: no \"weight_map\" object");
            var shards = map.EnumerateObject().Select(p => p.Value.GetString() ?? throw new InvalidDataException($"{indexPath}: weight_map entry '{p.Name}' is not a file name"))
                .Distinct().ToList();
            var result = new List<string>();
            foreach (var s in shards)
            {
                if (Path.IsPathRooted(s) || s.Contains("..", StringComparison.Ordinal))
                    throw new InvalidDataException($"{indexPath}: shard '{s}' must be a file name inside the folder");
                var p = Path.Combine(dir, s);
                if (!File.Exists(p)) throw new FileNotFoundException($"{indexPath}: shard '{s}' is missing", p);
                result.Add(p);
            }
            return result;
        }
        catch (JsonException e) { throw new InvalidDataException($"{indexPath}: not valid JSON ({e.Message})", e); }
    }

    /// <summary>Strictly loads weight files into a module, in place (dtype converted per tensor).</summary>
    public static StateDictLoadResult LoadWeights(nn.Module module, IReadOnlyList<string> files, string? prefix = null,
        Func<string, bool>? keyFilter = null, bool strict = true)
    {
        var opened = new List<SafeTensorsFile>();
        try
        {
            foreach (var f in files) opened.Add(SafeTensorsFile.Open(f));
            return StateDictLoader.Load(module, opened, prefix, keyFilter, strict);
        }
        finally
        {
            foreach (var f in opened) f.Dispose();
        }
    }

    /// <summary>Builds unet/ from its config and loads its weights (float32 by default; bfloat16 for fast CPU inference).</summary>
    public UNet2DCondition LoadUNet(ModelOptions? options = null, string? variant = null, string component = "unet")
    {
        var config = UNet2DConditionConfig.Load(ComponentFile(component, "config.json"));
        var files = WeightFiles(component, variant: variant);
        // Every weight is overwritten by the strict load: skip the random init.
        var unet = new UNet2DCondition(config, (options ?? ModelOptions.Default) with { Uninitialized = true });
        try { LoadWeights(unet, files); }
        catch { unet.Dispose(); throw; }
        unet.eval();
        return unet;
    }

    /// <summary>Builds vae/ from its config and loads its weights.</summary>
    public AutoencoderKL LoadVae(ModelOptions? options = null, string? variant = null, string component = "vae")
    {
        var config = AutoencoderKLConfig.Load(ComponentFile(component, "config.json"));
        var files = WeightFiles(component, variant: variant);
        var vae = new AutoencoderKL(config, (options ?? ModelOptions.Default) with { Uninitialized = true });
        try { LoadWeights(vae, files); }
        catch { vae.Dispose(); throw; }
        vae.eval();
        return vae;
    }
}
