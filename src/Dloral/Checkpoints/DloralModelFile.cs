using System.Text.Json;
using Dloral.Diffusion;
using Dloral.Diffusion.Clip;
using Dloral.Lora;
using Dloral.Nn;
using Dloral.Pipeline;
using Dloral.Temporal;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Checkpoints;

/// <summary>A loaded DLoRAL model together with its prompt encoder (both owned by the caller).</summary>
public sealed record DloralBundle(DloralModel Model, PromptEncoder Prompt) : IDisposable
{
    public void Dispose()
    {
        Model.Dispose();
        Prompt.Dispose();
    }
}

/// <summary>
/// dloral's single-file DLoRAL model: one self-describing safetensors written by <c>dloral convert</c> from a Stable
/// Diffusion 2.x diffusers folder and an official <c>model.pkl</c>. Tensors are prefixed <c>unet.</c> (the whole
/// DLoRAL UNet with its six adapters, PEFT names), <c>vae.</c>, <c>text_encoder.</c> and <c>cfr.</c> (the parts of the
/// CFR its forward uses); <c>__metadata__</c> holds the configs (unet, vae, text encoder, scheduler), the tokenizer
/// files, the LoRA ranks and the six adapter target lists, so nothing else is needed to load it.
/// </summary>
public static class DloralModelFile
{
    /// <summary><c>__metadata__["format"]</c> of a converted file.</summary>
    public const string FormatName = "dloral-sd";

    /// <summary>Version of the layout (bump on incompatible changes).</summary>
    public const string FormatVersion = "1";

    private static readonly string[] TokenizerFiles = ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"];
    private static readonly string[] Prefixes = ["unet.", "vae.", "text_encoder.", "cfr."];

    /// <summary>True when <paramref name="path"/> is a safetensors file whose metadata says it is a converted DLoRAL model.</summary>
    public static bool IsDloralFile(string path)
    {
        if (!File.Exists(path) || !path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) return false;
        try
        {
            using var f = SafeTensorsFile.Open(path);
            return f.Metadata.TryGetValue("format", out var fmt) && fmt == FormatName;
        }
        catch (SafeTensorsException)
        {
            return false;
        }
    }

    /// <summary>
    /// Converts a diffusers folder + official checkpoint into one file at <paramref name="outputPath"/> (written to a
    /// temporary file and renamed, so a failure leaves nothing behind). Every part is loaded and validated first: a UNet
    /// config that does not fit the checkpoint (another SD version), missing files or keys fail with the list of problems.
    /// </summary>
    /// <param name="diffusersFolder">The SD 2.x diffusers folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/).</param>
    /// <param name="checkpointPath">The official model.pkl.</param>
    /// <param name="outputPath">The .safetensors file to write.</param>
    /// <param name="dtype">Float32 or BFloat16 for floating-point tensors (integer buffers keep their type).</param>
    /// <param name="log">Progress lines (optional).</param>
    public static void Convert(string diffusersFolder, string checkpointPath, string outputPath, ScalarType dtype = ScalarType.Float32, Action<string>? log = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(diffusersFolder);
        ArgumentException.ThrowIfNullOrEmpty(checkpointPath);
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16))
            throw new ArgumentException($"dtype must be float32 or bfloat16, got {dtype}", nameof(dtype));
        if (!Directory.Exists(diffusersFolder)) throw new DirectoryNotFoundException($"--sd: diffusers folder not found: {diffusersFolder}");
        if (!File.Exists(checkpointPath)) throw new FileNotFoundException($"--checkpoint: file not found: {checkpointPath}", checkpointPath);
        var problems = new List<string>();
        foreach (var rel in new[] { "unet/config.json", "vae/config.json", "text_encoder/config.json", "tokenizer/vocab.json", "tokenizer/merges.txt" })
            if (!File.Exists(Path.Combine(diffusersFolder, rel))) problems.Add($"missing {rel}");
        if (problems.Count > 0)
            throw new InvalidDataException($"{diffusersFolder} is not a complete Stable Diffusion 2.x diffusers folder: {string.Join("; ", problems)}");

        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var folder = DiffusersFolder.Open(diffusersFolder);
        log?.Invoke($"reading {checkpointPath}");
        using var checkpoint = DloralCheckpoint.Load(checkpointPath);
        log?.Invoke("building the DLoRAL UNet, VAE and CFR (validates shapes)");
        using var model = DloralModelLoader.Load(folder, checkpoint, new ModelOptions(CPU, ScalarType.Float32));
        using var textEncoder = ClipTextEncoder.FromFolder(Path.Combine(diffusersFolder, "text_encoder"));

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["format"] = FormatName,
            ["format_version"] = FormatVersion,
            ["dtype"] = dtype == ScalarType.BFloat16 ? "bfloat16" : "float32",
            ["source_sd"] = Path.GetFileName(Path.GetFullPath(diffusersFolder).TrimEnd('/', '\\')),
            ["source_checkpoint"] = Path.GetFileName(checkpointPath),
            ["unet_config"] = File.ReadAllText(Path.Combine(diffusersFolder, "unet", "config.json")),
            ["vae_config"] = File.ReadAllText(Path.Combine(diffusersFolder, "vae", "config.json")),
            ["text_encoder_config"] = File.ReadAllText(Path.Combine(diffusersFolder, "text_encoder", "config.json")),
            ["lora_rank_unet_quality"] = checkpoint.LoraRankQuality.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["lora_rank_unet_consistency"] = checkpoint.LoraRankConsistency.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["adapter_targets"] = JsonSerializer.Serialize(checkpoint.AdapterTargets),
        };
        var scheduler = Path.Combine(diffusersFolder, "scheduler", "scheduler_config.json");
        if (File.Exists(scheduler)) metadata["scheduler_config"] = File.ReadAllText(scheduler);
        foreach (var name in TokenizerFiles)
        {
            var p = Path.Combine(diffusersFolder, "tokenizer", name);
            if (File.Exists(p)) metadata["tokenizer/" + name] = File.ReadAllText(p);
        }

        var tensors = new List<KeyValuePair<string, Tensor>>();
        void Add(string prefix, nn.Module module)
        {
            foreach (var (name, t) in module.state_dict())
                tensors.Add(new(prefix + name, t.is_floating_point() && t.dtype != dtype ? t.to(dtype) : t));
        }
        Add("unet.", model.Unet);
        Add("vae.", model.Vae);
        Add("text_encoder.", textEncoder);
        Add("cfr.", model.Cfr);
        log?.Invoke($"writing {tensors.Count} tensors to {outputPath}");
        var dir = Path.GetDirectoryName(Path.GetFullPath(outputPath))!;
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"-o: output folder does not exist: {dir}");
        SafeTensorsWriter.Save(outputPath, tensors, metadata);
    }

    /// <summary>
    /// Loads a converted file onto <paramref name="options"/>' device in its dtype (float16/bfloat16/float32 weights
    /// are converted per tensor while reading). Missing or mis-shaped tensors fail with the list of names.
    /// </summary>
    public static DloralBundle Load(string path, ModelOptions? options = null, DloralAdapterOptions? adapters = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= ModelOptions.Default;
        using var file = SafeTensorsFile.Open(path);
        var meta = file.Metadata;
        if (!meta.TryGetValue("format", out var format) || format != FormatName)
            throw new InvalidDataException($"{path}: not a DLoRAL model file (its __metadata__ has no format '{FormatName}'); create one with 'dloral convert --sd DIR --checkpoint model.pkl -o FILE'");
        if (!meta.TryGetValue("format_version", out var version) || version != FormatVersion)
            throw new InvalidDataException($"{path}: DLoRAL model file version '{version}' is not supported (this dloral reads version {FormatVersion})");
        var missingMeta = new[] { "unet_config", "vae_config", "text_encoder_config", "lora_rank_unet_quality", "lora_rank_unet_consistency", "adapter_targets", "tokenizer/vocab.json", "tokenizer/merges.txt" }
            .Where(k => !meta.ContainsKey(k)).ToList();
        if (missingMeta.Count > 0) throw new InvalidDataException($"{path}: metadata lacks {string.Join(", ", missingMeta)}");
        var unknown = file.Entries.Keys.Where(k => !Prefixes.Any(p => k.StartsWith(p, StringComparison.Ordinal))).Take(5).ToList();
        if (unknown.Count > 0) throw new InvalidDataException($"{path}: unexpected tensors outside unet./vae./text_encoder./cfr.: {string.Join(", ", unknown)}");

        var uninit = options with { Uninitialized = true };
        UNet2DCondition? unet = null;
        AutoencoderKL? vae = null;
        CrossFrameRetrieval? cfr = null;
        ClipTextEncoder? text = null;
        try
        {
            using (var doc = JsonDocument.Parse(meta["unet_config"])) unet = new UNet2DCondition(UNet2DConditionConfig.FromJson(doc.RootElement, path + "[unet_config]"), uninit);
            var targets = JsonSerializer.Deserialize<Dictionary<string, List<string>>>(meta["adapter_targets"])
                ?? throw new InvalidDataException($"{path}: adapter_targets is null");
            List<string> T(string name) => targets.TryGetValue(name, out var l) ? l : throw new InvalidDataException($"{path}: adapter_targets lacks '{name}'");
            var modules = new DloralTargetModules(T(DloralAdapters.EncoderQuality), T(DloralAdapters.DecoderQuality), T(DloralAdapters.OthersQuality),
                                                  T(DloralAdapters.EncoderConsistency), T(DloralAdapters.DecoderConsistency), T(DloralAdapters.OthersConsistency));
            DloralUnet.Prepare(unet, modules, int.Parse(meta["lora_rank_unet_quality"], System.Globalization.CultureInfo.InvariantCulture),
                               int.Parse(meta["lora_rank_unet_consistency"], System.Globalization.CultureInfo.InvariantCulture));
            StateDictLoader.Load(unet, file, "unet.");
            unet.eval();

            using (var doc = JsonDocument.Parse(meta["vae_config"])) vae = new AutoencoderKL(AutoencoderKLConfig.FromJson(doc.RootElement, path + "[vae_config]"), uninit);
            StateDictLoader.Load(vae, file, "vae.");
            vae.eval();

            cfr = new CrossFrameRetrieval();
            if (options.Device is { } device) cfr.to(device);
            StateDictLoader.Load(cfr, file, "cfr.");
            if (options.DType != ScalarType.Float32) cfr.to(options.DType);

            text = new ClipTextEncoder(ClipTextConfig.FromJson(meta["text_encoder_config"], path + "[text_encoder_config]"), options.Device, options.DType);
            StateDictLoader.Load(text, file, "text_encoder.");
            text.eval();
            var tokenizer = LoadTokenizer(meta);

            var model = new DloralModel(vae, unet, cfr, adapters);
            return new DloralBundle(model, new PromptEncoder(tokenizer, text));
        }
        catch
        {
            unet?.Dispose();
            vae?.Dispose();
            cfr?.Dispose();
            text?.Dispose();
            throw;
        }
    }

    /// <summary>The tokenizer loader reads files, so the stored ones are written to a private temporary folder first.</summary>
    private static ClipTokenizer LoadTokenizer(IReadOnlyDictionary<string, string> meta)
    {
        var dir = Directory.CreateTempSubdirectory("dloral-tokenizer-");
        try
        {
            foreach (var name in TokenizerFiles)
                if (meta.TryGetValue("tokenizer/" + name, out var text)) File.WriteAllText(Path.Combine(dir.FullName, name), text);
            return ClipTokenizer.FromFolder(dir.FullName);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
