using static TorchSharp.torch;

namespace Dloral.Checkpoints;

/// <summary>
/// The official DLoRAL <c>model.pkl</c> (written by the reference <c>Generator.save_model</c>):
/// the six LoRA target-module lists, the two LoRA ranks, <c>state_dict_unet</c> (the WHOLE
/// peft-wrapped UNet, base weights included, with the 8-channel conv_in — the reference's
/// <c>if "lora" or "conv_in" in n</c> is always true) and <c>state_dict_bpp</c> (the full CFR
/// model, including submodules the forward never uses). Read with the safe unpickler.
/// Owns its tensors: dispose it after copying them into modules. Opened lazily, it holds only the
/// metadata and streams each tensor from the file into its destination (<see cref="UnetWeights"/>).
/// </summary>
public sealed class DloralCheckpoint : IDisposable
{
    /// <summary>The reference's adapter names, in the order it adds them.</summary>
    public static readonly string[] AdapterNames =
    [
        "default_encoder_quality", "default_decoder_quality", "default_others_quality",
        "default_encoder_consistency", "default_decoder_consistency", "default_others_consistency",
    ];

    private readonly TorchCheckpoint _checkpoint;

    public string Path { get; }
    /// <summary>LoRA rank of the D-LoRA (quality) adapters.</summary>
    public int LoraRankQuality { get; }
    /// <summary>LoRA rank of the C-LoRA (consistency) adapters.</summary>
    public int LoraRankConsistency { get; }
    public IReadOnlyList<string> EncoderModulesQuality { get; }
    public IReadOnlyList<string> DecoderModulesQuality { get; }
    public IReadOnlyList<string> OthersModulesQuality { get; }
    public IReadOnlyList<string> EncoderModulesConsistency { get; }
    public IReadOnlyList<string> DecoderModulesConsistency { get; }
    public IReadOnlyList<string> OthersModulesConsistency { get; }
    /// <summary>Adapter name (<see cref="AdapterNames"/>) → its target modules.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> AdapterTargets { get; }
    private readonly IReadOnlyDictionary<string, Tensor>? _stateDictUnet;
    private readonly IReadOnlyDictionary<string, Tensor>? _stateDictBpp;

    /// <summary>True when opened with <c>lazy: true</c> (tensors are read on demand).</summary>
    public bool IsLazy => _checkpoint.IsLazy;

    /// <summary>The peft-named UNet state_dict, in file order (views owned by this object; eager only).</summary>
    public IReadOnlyDictionary<string, Tensor> StateDictUnet => _stateDictUnet
        ?? throw new InvalidOperationException($"{Path} was opened lazily: use UnetWeights");

    /// <summary>The CFR (<c>CFR_model</c>) state_dict, in file order (eager only).</summary>
    public IReadOnlyDictionary<string, Tensor> StateDictBpp => _stateDictBpp
        ?? throw new InvalidOperationException($"{Path} was opened lazily: use CfrWeights");

    /// <summary>state_dict_unet (eager or lazy) as a weight source for <see cref="Dloral.Diffusion.StateDictLoader"/>.</summary>
    public IWeightSource UnetWeights { get; }

    /// <summary>state_dict_bpp as a weight source (the CFR; unused submodules can be ignored by the loader).</summary>
    public IWeightSource CfrWeights { get; }

    /// <summary>Input channels of the checkpoint's conv_in (8 for DLoRAL).</summary>
    public long ConvInChannels =>
        UnetWeights.Contains("conv_in.base_layer.weight") ? UnetWeights.ShapeOf("conv_in.base_layer.weight")[1]
        : UnetWeights.Contains("conv_in.weight") ? UnetWeights.ShapeOf("conv_in.weight")[1]
        : throw new CheckpointFormatException(Path, "state_dict_unet has no conv_in weight");

    private DloralCheckpoint(TorchCheckpoint checkpoint)
    {
        _checkpoint = checkpoint;
        Path = checkpoint.Path;
        var root = checkpoint.RootDict;
        var problems = new List<string>();

        IReadOnlyList<string> Names(string key)
        {
            if (!root.TryGetValue(key, out var v))
            {
                problems.Add($"missing '{key}'");
                return [];
            }
            if (v is List<object?> list && list.All(x => x is string))
                return list.Cast<string>().ToArray();
            problems.Add($"'{key}' is a {SafeUnpickler.TypeName(v)}, expected a list of module names");
            return [];
        }

        int Rank(string key)
        {
            if (!root.TryGetValue(key, out var v))
            {
                problems.Add($"missing '{key}'");
                return 0;
            }
            if (v is long r and > 0 and < 100_000)
                return (int)r;
            problems.Add($"'{key}' is {SafeUnpickler.TypeName(v)} {v}, expected a positive int");
            return 0;
        }

        IWeightSource Weights(string key)
        {
            if (!root.TryGetValue(key, out var v))
            {
                problems.Add($"missing '{key}'");
                return new DictionaryWeightSource(new Dictionary<string, Tensor>(), key);
            }
            try
            {
                return TorchCheckpoint.AsWeightSource(v, key, Path);
            }
            catch (CheckpointFormatException e)
            {
                problems.Add(e.Problem);
                return new DictionaryWeightSource(new Dictionary<string, Tensor>(), key);
            }
        }

        EncoderModulesQuality = Names("unet_lora_encoder_modules_quality");
        DecoderModulesQuality = Names("unet_lora_decoder_modules_quality");
        OthersModulesQuality = Names("unet_lora_others_modules_quality");
        EncoderModulesConsistency = Names("unet_lora_encoder_modules_consistency");
        DecoderModulesConsistency = Names("unet_lora_decoder_modules_consistency");
        OthersModulesConsistency = Names("unet_lora_others_modules_consistency");
        LoraRankQuality = Rank("lora_rank_unet_quality");
        LoraRankConsistency = Rank("lora_rank_unet_consistency");
        UnetWeights = Weights("state_dict_unet");
        CfrWeights = Weights("state_dict_bpp");
        if (problems.Count > 0)
            throw new CheckpointFormatException(Path, $"not a DLoRAL checkpoint: {string.Join("; ", problems)}");
        if (!checkpoint.IsLazy)
        {
            _stateDictUnet = TorchCheckpoint.AsStateDict(root["state_dict_unet"], "state_dict_unet", Path);
            _stateDictBpp = TorchCheckpoint.AsStateDict(root["state_dict_bpp"], "state_dict_bpp", Path);
        }

        AdapterTargets = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal)
        {
            ["default_encoder_quality"] = EncoderModulesQuality,
            ["default_decoder_quality"] = DecoderModulesQuality,
            ["default_others_quality"] = OthersModulesQuality,
            ["default_encoder_consistency"] = EncoderModulesConsistency,
            ["default_decoder_consistency"] = DecoderModulesConsistency,
            ["default_others_consistency"] = OthersModulesConsistency,
        };
    }

    /// <summary>Loads and validates a DLoRAL model.pkl (safe: allow-listed pickle globals only).</summary>
    /// <param name="path">The model.pkl file.</param>
    /// <param name="lazy">Read only the metadata now and stream tensors on demand through
    /// <see cref="UnetWeights"/>/<see cref="CfrWeights"/> (no full in-memory copy).</param>
    public static DloralCheckpoint Load(string path, bool lazy = false)
    {
        var checkpoint = TorchCheckpoint.Load(path, lazy);
        try
        {
            return new DloralCheckpoint(checkpoint);
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    /// <summary>A one-paragraph description for <c>dloral info</c>.</summary>
    public string Summary()
    {
        long Values(IWeightSource w) => w.Names.Sum(n => w.ShapeOf(n).Aggregate(1L, (a, b) => a * b));
        var storageTypes = string.Join(", ", _checkpoint.Storages.Values.Select(st => st.DType.ToString()).Distinct());
        var locations = string.Join(", ", _checkpoint.Storages.Values.Select(st => st.Location).Distinct());
        return $"DLoRAL checkpoint {Path}: LoRA rank quality {LoraRankQuality}, consistency {LoraRankConsistency}; " +
               $"target modules encoder/decoder/others = {EncoderModulesQuality.Count}/{DecoderModulesQuality.Count}/{OthersModulesQuality.Count} (quality), " +
               $"{EncoderModulesConsistency.Count}/{DecoderModulesConsistency.Count}/{OthersModulesConsistency.Count} (consistency); " +
               $"state_dict_unet {UnetWeights.Names.Count()} tensors ({Values(UnetWeights):N0} values, conv_in {ConvInChannels} channels); " +
               $"state_dict_bpp {CfrWeights.Names.Count()} tensors ({Values(CfrWeights):N0} values); storages {storageTypes} saved on {locations}.";
    }

    public void Dispose() => _checkpoint.Dispose();
}
