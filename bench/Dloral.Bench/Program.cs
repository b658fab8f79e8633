namespace Dloral.Bench;

/// <summary>
/// <c>dotnet run -c Release --project bench/Dloral.Bench -- NAME [args]</c>. Each benchmark lives in
/// its own file; register it here with one line. Results go to bench/results/NAME.{json,md}.
/// </summary>
public static class Program
{
    private static readonly Dictionary<string, (string Help, Func<string[], int> Run)> Benchmarks = new()
    {
        ["pipeline-overhead"] = ("identity pipeline vs plain ffmpeg on a 720p clip: time ratio and peak RSS 5 s vs 60 s", PipelineOverheadBench.Run),
        ["media-overhead"] = ("media layer alone (FrameSource -> FrameWriter) vs plain ffmpeg; peak RSS short vs long", MediaOverheadBench.Run),
        ["media-identity"] = ("child of media-overhead: copy IN to OUT frame by frame", MediaOverheadBench.Identity),
        ["bicubic"] = ("end-to-end bicubic (decode, upscale, encode): fps, s/frame per stage, peak RSS; the reference row", BicubicEndToEndBench.Run),
        ["micro-metrics"] = ("BenchmarkDotNet: flow warp, SSIM, PSNR, Lucas-Kanade flow, ResNet-18 feature distance at 256x256", MetricsMicroBench.Run),
        ["sd"] = ("SD forward: sd (unet|vae-encode|vae-decode|load) [fp32|bf16]", SdForwardBench.Run),
        ["train-step"] = ("training step of configs/tiny.json: s/step per stage, peak RSS; args [crop=64] [steps=20] [threads]", TrainStepBench.Run),
        ["conv-backends"] = ("the compact UNet's 3x3 convs: oneDNN (NCHW, channels-last) vs NNPACK Winograd", ConvBackendsBench.Run),
        ["unet-ops"] = ("op-level timing of the compact UNet blocks (conv, GroupNorm, SiLU, add, cat) NCHW vs channels-last", UnetOpsBench.Run),
        ["upsample-conv"] = ("nearest x2 + 3x3 conv (the UNet upsamplers): two-step vs phase kernels vs the transposed conv dloral uses, channels-last", UpsampleConvBench.Run),
        ["compact-unet-profile"] = ("where the shipped compact UNet spends a 720p frame: forward hooks on every leaf module, merged, channels-last", CompactUnetProfileBench.Run),
        ["compact-model"] = ("compact DLoRAL forward 320x180 -> 1280x720, candidates x fp32/bf16", CompactModelBench.Run),
        ["baselines"] = ("bicubic/lanczos vs ffmpeg swscale and Pillow: mean/max difference in 8-bit levels", BaselinesBench.Run),
        ["dloral-frame"] = ("DLoRAL pipeline, full-size SD 2.1 (random weights): s/frame by stage, peak RSS. [fp32|bf16] [--size 512x512] [--frames N] [--merge] [--no-cache]", DloralFrameBench.Run),
    };

    public static int Main(string[] args)
    {
        if (args.Length > 0 && Benchmarks.TryGetValue(args[0], out var bench)) return bench.Run(args[1..]);
        Console.Error.WriteLine("usage: Dloral.Bench NAME [args]");
        foreach (var (name, (help, _)) in Benchmarks) Console.Error.WriteLine($"  {name,-20} {help}");
        return args.Length == 0 ? 0 : 2;
    }
}
