using System.Runtime.CompilerServices;
using Dloral.Checkpoints;
using Dloral.Diffusion;
using Dloral.Pipeline.Compact;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Pipeline;

/// <summary>
/// Where <c>dloral upscale --model</c> finds a DLoRAL model: (a) a Stable Diffusion 2.x diffusers folder with
/// <c>--checkpoint model.pkl</c> (the official layout), (b) a file written by <c>dloral convert</c> (a path, or a name
/// in the model catalog's folders), or (c) the compact model: the name <c>compact</c> (see <see cref="CompactModelFile"/>)
/// or a path to a compact weights file. Builds the <see cref="DloralUpscaler"/> with the prompt encoded once.
/// </summary>
public static class DloralModelSource
{
#pragma warning disable CA2255 // A library module initializer is intended here: it plugs the converted format into the catalog.
    [ModuleInitializer]
    internal static void RegisterWithCatalog() =>
        ModelCatalog.RegisterLoader(".safetensors", (path, scale, device) => CompactModelFile.IsCompactFile(path)
            ? OpenCompact(path, new DloralVideoOptions { Scale = scale, Device = device })
            : Open(path, new DloralVideoOptions { Scale = scale, Device = device }));
#pragma warning restore CA2255

    /// <summary>
    /// The DLoRAL upscaler for <paramref name="model"/> when it names a DLoRAL source (a diffusers folder, a converted
    /// file, or a catalog name of one); null when it is something else (a built-in baseline, another format).
    /// </summary>
    public static IUpscaler? TryCreate(string model, DloralVideoOptions options, ModelCatalog? catalog = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(model)) return null;
        if (Directory.Exists(model)) return Open(model, options);
        if (string.Equals(model, CompactModelFile.Name, StringComparison.OrdinalIgnoreCase) && !File.Exists(model))
        {
            var location = CompactModelFile.Locate(catalog);
            return OpenCompact(location.Path ?? throw new UpscaleOptionsException("--model compact: " + location.NotFoundMessage, "model"), options);
        }
        if (options.Checkpoint is not null)
            throw new UpscaleOptionsException($"--checkpoint goes with a Stable Diffusion diffusers folder as --model; '{model}' is not a folder", "checkpoint");
        var path = File.Exists(model) ? model : null;
        if (path is null)
        {
            var entry = (catalog ?? ModelCatalog.Default).Entries.FirstOrDefault(e => string.Equals(e.Name, model, StringComparison.OrdinalIgnoreCase));
            path = entry?.Path;
        }
        if (path is not null && CompactModelFile.IsCompactFile(path)) return OpenCompact(path, options);
        return path is not null && DloralModelFile.IsDloralFile(path) ? Open(path, options) : null;
    }

    /// <summary>
    /// Loads a compact weights file (<see cref="CompactDloral.Load"/>, in <see cref="DloralVideoOptions.DType"/> on its
    /// device) and builds the upscaler with the model's learned prompt. The scale must be the model's.
    /// </summary>
    /// <exception cref="UpscaleOptionsException">Wrong scale, a --prompt or --checkpoint (the compact model has neither), or a bad file.</exception>
    public static DloralUpscaler OpenCompact(string path, DloralVideoOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (!string.IsNullOrEmpty(options.Prompt))
            throw new UpscaleOptionsException("--prompt: the compact DLoRAL model has no text encoder (it uses a learned prompt)", "prompt");
        if (options.Checkpoint is not null)
            throw new UpscaleOptionsException("--checkpoint goes with a Stable Diffusion diffusers folder, not with the compact model", "checkpoint");
        CompactDloral compact;
        try
        {
            // The scale is in the file's metadata: checked before the weights are read.
            int scale = CompactModelFile.ScaleOf(path);
            if (scale != options.Scale)
                throw new UpscaleOptionsException($"the compact DLoRAL model {path} upscales x{scale} only; use --scale {scale} (got {options.Scale})", "scale");
            // Channels-last UNet: oneDNN's convolutions skip a re-layout per layer (UNet 1.99 → 1.60 s/frame at 720p on an
            // AVX2 2-core machine, bench/results/compact-upscale.md); the output is the same up to float rounding.
            compact = CompactDloral.Load(path, options.ModelOptions with { ChannelsLast = true });
        }
        catch (Exception e) when (IsBadModelInput(e))
        {
            throw new UpscaleOptionsException($"cannot load compact DLoRAL model {path}: {e.Message}", "model");
        }
        try
        {
            return new DloralUpscaler(compact, options);
        }
        catch
        {
            compact.Dispose();
            throw;
        }
    }

    /// <summary>Loads the model (folder + <see cref="DloralVideoOptions.Checkpoint"/>, or a converted file) and builds the upscaler.</summary>
    public static DloralUpscaler Open(string model, DloralVideoOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var bundle = LoadBundle(model, options.Checkpoint, options.ModelOptions, options.Adapters);
        try
        {
            Tensor embeds;
            using (bundle.Prompt) embeds = bundle.Prompt.Encode(options.Prompt);   // once per video; the text encoder is freed
            return new DloralUpscaler(bundle.Model, embeds, options);
        }
        catch
        {
            bundle.Model.Dispose();
            throw;
        }
    }

    /// <summary>True for the exceptions a wrong, truncated or mismatched model file raises (as opposed to a bug).</summary>
    public static bool IsBadModelInput(Exception e) =>
        e is InvalidDataException or Dloral.Diffusion.StateDictMismatchException or SafeTensorsException or CheckpointFormatException or NotSupportedException or FileNotFoundException
            or DirectoryNotFoundException or System.Text.Json.JsonException;

    /// <summary>Loads model + prompt encoder from a diffusers folder and checkpoint, or from a converted file.</summary>
    /// <exception cref="UpscaleOptionsException">The model files are missing, wrong or do not fit together (the message lists what).</exception>
    public static DloralBundle LoadBundle(string model, string? checkpoint, Nn.ModelOptions options, DloralAdapterOptions? adapters = null)
    {
        try
        {
            return LoadBundleCore(model, checkpoint, options, adapters);
        }
        catch (Exception e) when (IsBadModelInput(e))
        {
            throw new UpscaleOptionsException($"cannot load DLoRAL model {model}: {e.Message}", "model");
        }
    }

    private static DloralBundle LoadBundleCore(string model, string? checkpoint, Nn.ModelOptions options, DloralAdapterOptions? adapters = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(model);
        if (Directory.Exists(model))
        {
            if (string.IsNullOrEmpty(checkpoint))
                throw new UpscaleOptionsException($"--model {model} is a diffusers folder: give the DLoRAL weights with --checkpoint model.pkl (or convert both into one file with 'dloral convert')", "checkpoint");
            if (!File.Exists(checkpoint)) throw new UpscaleOptionsException($"--checkpoint: file not found: {checkpoint}", "checkpoint");
            var dloral = DloralModelLoader.Load(model, checkpoint, options, adapters);
            try
            {
                return new DloralBundle(dloral, PromptEncoder.FromDiffusersFolder(model, options.Device, options.DType));
            }
            catch
            {
                dloral.Dispose();
                throw;
            }
        }
        if (!File.Exists(model)) throw new UpscaleOptionsException($"model not found: {model}", "model");
        return DloralModelFile.Load(model, options, adapters);
    }
}
