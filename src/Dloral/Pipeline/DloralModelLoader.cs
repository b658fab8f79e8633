using Dloral.Checkpoints;
using Dloral.Diffusion;
using Dloral.Lora;
using Dloral.Nn;
using Dloral.Temporal;
using TorchSharp;

namespace Dloral.Pipeline;

/// <summary>
/// Builds a <see cref="DloralModel"/> from a Stable Diffusion 2.x diffusers folder and an official DLoRAL
/// <c>model.pkl</c>, as the reference <c>Generator_eval</c> does: VAE from the folder; UNet architecture from the
/// folder's unet/config.json with conv_in widened to 8 channels and the six adapters on the checkpoint's module lists
/// and ranks; then EVERY UNet parameter from <c>state_dict_unet</c> (the reference's always-true
/// <c>"lora" or "conv_in" in n</c>); CFR from <c>state_dict_bpp</c>, ignoring the submodules its forward never uses.
/// </summary>
/// <remarks>
/// The folder's UNet weights are not read: the checkpoint overwrites all of them, so reading them would only cost time
/// and memory. A checkpoint that does not fit the folder's UNet config (another SD version, missing or mis-shaped
/// tensors) fails with every mismatch listed.
/// </remarks>
public static class DloralModelLoader
{
    /// <summary>Loads the diffusers folder + model.pkl (safe unpickler) into a model on <paramref name="options"/>' device and dtype.</summary>
    public static DloralModel Load(string diffusersFolder, string checkpointPath, ModelOptions? options = null, DloralAdapterOptions? adapters = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(checkpointPath);
        using var checkpoint = DloralCheckpoint.Load(checkpointPath);
        return Load(DiffusersFolder.Open(diffusersFolder), checkpoint, options, adapters);
    }

    /// <summary>As <see cref="Load(string, string, ModelOptions?, DloralAdapterOptions?)"/> with an already opened checkpoint (not disposed here).</summary>
    public static DloralModel Load(DiffusersFolder folder, DloralCheckpoint checkpoint, ModelOptions? options = null, DloralAdapterOptions? adapters = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(checkpoint);
        if (checkpoint.ConvInChannels != DloralUnet.InChannels)
            throw new InvalidDataException($"{checkpoint.Path}: conv_in takes {checkpoint.ConvInChannels} channels, a DLoRAL UNet takes {DloralUnet.InChannels}");

        AutoencoderKL? vae = null;
        UNet2DCondition? unet = null;
        CrossFrameRetrieval? cfr = null;
        try
        {
            vae = folder.LoadVae(options);
            unet = BuildUnet(folder, checkpoint, options);
            cfr = new CrossFrameRetrieval();
            if (options?.Device is { } device) cfr.to(device);
            cfr.LoadStateDict(checkpoint.StateDictBpp, ignoreUnusedSubmodules: true, source: $"{checkpoint.Path}[state_dict_bpp]");
            if (options is not null && options.DType != TorchSharp.torch.ScalarType.Float32) cfr.to(options.DType);
            return new DloralModel(vae, unet, cfr, adapters);
        }
        catch
        {
            vae?.Dispose();
            unet?.Dispose();
            cfr?.Dispose();
            throw;
        }
    }

    /// <summary>The DLoRAL UNet alone: architecture from the folder, adapters and all weights from the checkpoint.</summary>
    public static UNet2DCondition BuildUnet(DiffusersFolder folder, DloralCheckpoint checkpoint, ModelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(checkpoint);
        var config = UNet2DConditionConfig.Load(folder.ComponentFile("unet", "config.json"));
        var unet = new UNet2DCondition(config, options);
        try
        {
            var targets = new DloralTargetModules(
                checkpoint.EncoderModulesQuality, checkpoint.DecoderModulesQuality, checkpoint.OthersModulesQuality,
                checkpoint.EncoderModulesConsistency, checkpoint.DecoderModulesConsistency, checkpoint.OthersModulesConsistency);
            DloralUnet.Prepare(unet, targets, checkpoint.LoraRankQuality, checkpoint.LoraRankConsistency);
            StateDictLoader.Load(unet, checkpoint.StateDictUnet, $"{checkpoint.Path}[state_dict_unet]");
            unet.eval();
            return unet;
        }
        catch
        {
            unet.Dispose();
            throw;
        }
    }
}
