using System.CommandLine;
using System.Globalization;
using Dloral.Pipeline;
using TorchSharp;

namespace Dloral.Cli.Commands;

/// <summary>
/// The DLoRAL options of <c>dloral upscale</c> (used when --model is a DLoRAL model: a diffusers folder with
/// --checkpoint, or a file from <c>dloral convert</c>). Kept in one place so the upscale command only adds and reads them.
/// </summary>
public sealed class DloralCliOptions
{
    private readonly Option<string?> _checkpoint = new("--checkpoint") { Description = "DLoRAL: the official model.pkl, when --model is a Stable Diffusion 2.1 diffusers folder." };
    private readonly Option<string> _prompt = new("--prompt") { Description = "DLoRAL: text prompt, encoded once per video (default empty).", DefaultValueFactory = _ => "" };
    private readonly Option<int> _stage = new("--stage") { Description = "DLoRAL: 0 = consistency (C-LoRA) adapters only, 1 = C-LoRA + D-LoRA (default).", DefaultValueFactory = _ => 1 };
    private readonly Option<double> _detail = new("--detail") { Description = "DLoRAL: D-LoRA weight: 0 = consistency only, 1 = the reference (default), >1 = stronger detail.", DefaultValueFactory = _ => 1.0 };
    private readonly Option<bool> _merge = new("--merge-adapters") { Description = "SD-based DLoRAL: fold the active adapters into the UNet weights (faster, same result within float tolerance). The compact model always runs merged." };
    private readonly Option<string?> _colorFix = new("--color-fix") { Description = "DLoRAL: colour correction against the bicubic frame: adain, wavelet, none. Default: adain for SD-based DLoRAL (as the reference), none for the compact model." };
    private readonly Option<int?> _tile = new("--tile") { Description = "DLoRAL: latent tile side in latent pixels. Default: 96 (= 768 px, the reference) for SD-based DLoRAL; 1024 px / the codec factor for the compact model (a 720p frame is one tile)." };
    private readonly Option<int?> _tileOverlap = new("--tile-overlap") { Description = "DLoRAL: latent tile overlap in latent pixels. Default: 32 for SD-based DLoRAL; 256 px / the codec factor for the compact model." };
    private readonly Option<string> _dtype = new("--dtype") { Description = "DLoRAL: compute precision: float32 (default) or bfloat16 (the compact model runs only its UNet in bfloat16). bfloat16 is ~1.4x faster on CPUs with AVX512-BF16 or AMX, and emulated, many times slower, on others (a warning says so).", DefaultValueFactory = _ => "float32" };
    private readonly Option<int> _selfEnsemble = new("--self-ensemble") { Description = "Compact DLoRAL: average the UNet over this many mirrored/rotated views of each frame: 1 (default), 2, 4 or 8. Each view costs one more UNet pass (on the model card's clips, measured with the seventh-round weights: 2 views +0.013 dB PSNR-Y for 1.76x the time, 4 views +0.029 dB for 3.2x).", DefaultValueFactory = _ => 1 };
    private readonly Option<int> _minSize = new("--min-size") { Description = "DLoRAL: shorter side (px) frames are brought up to before processing (default 512, as the reference; lower only for previews).", DefaultValueFactory = _ => 512 };
    private readonly Option<bool> _noTemporal = new("--no-temporal") { Description = "DLoRAL: run each frame alone, without cross-frame retrieval (for comparisons)." };
    private readonly Option<bool> _verbose = new("--verbose") { Description = "DLoRAL: print temporal-window starts (clip start, scene cuts) on stderr." };

    private DloralCliOptions(Command command)
    {
        _stage.AcceptOnlyFromAmong("0", "1");
        _colorFix.AcceptOnlyFromAmong("adain", "wavelet", "none");
        _dtype.AcceptOnlyFromAmong("float32", "bfloat16", "fp32", "bf16");
        foreach (var o in new Option[] { _checkpoint, _prompt, _stage, _detail, _merge, _colorFix, _tile, _tileOverlap, _dtype, _selfEnsemble, _minSize, _noTemporal, _verbose })
            command.Add(o);
    }

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    public static DloralCliOptions AddTo(Command command) => new(command);

    /// <summary>The parsed settings; <paramref name="log"/> receives window-start lines when --verbose is given.</summary>
    public DloralVideoOptions Read(ParseResult parse, Action<string>? log)
    {
        ArgumentNullException.ThrowIfNull(parse);
        return new DloralVideoOptions
        {
            Checkpoint = parse.GetValue(_checkpoint),
            Prompt = parse.GetValue(_prompt) ?? "",
            Adapters = new DloralAdapterOptions(parse.GetValue(_stage) == 0 ? DloralStage.Consistency : DloralStage.Full, parse.GetValue(_detail), parse.GetValue(_merge)),
            ColorFix = parse.GetValue(_colorFix) switch { "wavelet" => ColorFixMethod.Wavelet, "none" => ColorFixMethod.None, "adain" => ColorFixMethod.Adain, _ => null },
            TileSize = parse.GetValue(_tile),
            TileOverlap = parse.GetValue(_tileOverlap),
            DType = parse.GetValue(_dtype) is "bfloat16" or "bf16" ? torch.ScalarType.BFloat16 : torch.ScalarType.Float32,
            SelfEnsemble = parse.GetValue(_selfEnsemble),
            MinimumProcessSide = parse.GetValue(_minSize),
            FrameByFrame = parse.GetValue(_noTemporal),
            Log = parse.GetValue(_verbose) ? log : null,
        };
    }

    /// <summary>Human-readable dtype name.</summary>
    public static string Describe(torch.ScalarType t) => t == torch.ScalarType.BFloat16 ? "bfloat16" : t.ToString().ToLower(CultureInfo.InvariantCulture);
}
