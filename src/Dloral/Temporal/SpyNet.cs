using System.Diagnostics.CodeAnalysis;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Dloral.Temporal;

/// <summary>
/// mmcv's <c>ConvModule</c> without norm: a conv (parameters <c>conv.weight</c>/<c>conv.bias</c>) and an optional ReLU.
/// </summary>
[SuppressMessage("Style", "IDE1006", Justification = "field names are the PyTorch state_dict keys")]
public sealed class ConvModule : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv;
    private readonly bool _relu;

    public ConvModule(long inChannels, long outChannels, long kernelSize, long padding, bool relu) : base(nameof(ConvModule))
    {
        conv = nn.Conv2d(inChannels, outChannels, kernelSize, stride: 1, padding: padding);
        _relu = relu;
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        var y = conv.forward(input);
        return _relu ? F.relu(y, inplace: true) : y;
    }
}

/// <summary>One SPyNet pyramid level: five 7×7 convs 8→32→64→32→16→2 (ReLU between), predicting a residual flow.</summary>
[SuppressMessage("Style", "IDE1006", Justification = "field names are the PyTorch state_dict keys")]
public sealed class SpyNetBasicModule : nn.Module<Tensor, Tensor>
{
    private readonly Sequential basic_module;

    public SpyNetBasicModule() : base(nameof(SpyNetBasicModule))
    {
        basic_module = nn.Sequential(
            new ConvModule(8, 32, 7, 3, relu: true),
            new ConvModule(32, 64, 7, 3, relu: true),
            new ConvModule(64, 32, 7, 3, relu: true),
            new ConvModule(32, 16, 7, 3, relu: true),
            new ConvModule(16, 2, 7, 3, relu: false));
        RegisterComponents();
    }

    /// <param name="input">[b,8,h,w]: reference image (3), warped supporting image (3), initial flow (2).</param>
    public override Tensor forward(Tensor input) => basic_module.forward(input);
}

/// <summary>
/// SPyNet optical flow (the BasicVSR/mmagic variant DLoRAL's CFR uses): 6 pyramid levels, ImageNet
/// normalisation with the <c>mean</c>/<c>std</c> buffers, inputs resized to a multiple of 32.
/// </summary>
/// <remarks>
/// DLoRAL feeds frames in [-1,1] although the ImageNet normalisation assumes [0,1]; the official weights
/// were trained that way, so callers must pass what the reference passes (see <see cref="CrossFrameRetrieval"/>).
/// </remarks>
[SuppressMessage("Style", "IDE1006", Justification = "field names are the PyTorch state_dict keys")]
public sealed class SpyNet : nn.Module<Tensor, Tensor, Tensor>
{
    /// <summary>Number of pyramid levels (coarsest first).</summary>
    public const int Levels = 6;

    /// <summary>True for the parameters of a level's last conv (<c>basic_module.N.basic_module.4.conv.*</c>), the one that
    /// outputs the residual flow: zeroing them makes a SPyNet that predicts zero flow (a from-scratch starting point).</summary>
    public static bool IsLastLayerOfLevel(string name) =>
        name.StartsWith("basic_module.", StringComparison.Ordinal) && name.Contains(".basic_module.4.", StringComparison.Ordinal);

    private readonly ModuleList<SpyNetBasicModule> basic_module;
    private readonly Tensor mean;
    private readonly Tensor std;

    public SpyNet() : base(nameof(SpyNet))
    {
        basic_module = new ModuleList<SpyNetBasicModule>(Enumerable.Range(0, Levels).Select(_ => new SpyNetBasicModule()).ToArray());
        // Buffers outlive any dispose scope the constructor happens to run in.
        mean = tensor(new float[] { 0.485f, 0.456f, 0.406f }).reshape(1, 3, 1, 1).DetachFromDisposeScope();
        std = tensor(new float[] { 0.229f, 0.224f, 0.225f }).reshape(1, 3, 1, 1).DetachFromDisposeScope();
        RegisterComponents();
    }

    /// <summary>
    /// Flow from <paramref name="reference"/> to <paramref name="supporting"/> ([n,3,h,w], any size), [n,2,h,w] in pixels.
    /// The frames are resized (bilinear) to a multiple of 32, the flow is resized back and its x/y components
    /// scaled by w/w_up and h/h_up.
    /// </summary>
    public override Tensor forward(Tensor reference, Tensor supporting)
    {
        using var scope = NewDisposeScope();
        long h = reference.shape[2], w = reference.shape[3];
        long wUp = w % 32 == 0 ? w : 32 * (w / 32 + 1);
        long hUp = h % 32 == 0 ? h : 32 * (h / 32 + 1);
        var r = F.interpolate(reference, size: [hUp, wUp], mode: InterpolationMode.Bilinear, align_corners: false);
        var s = F.interpolate(supporting, size: [hUp, wUp], mode: InterpolationMode.Bilinear, align_corners: false);
        var flow = F.interpolate(ComputeFlow(r, s), size: [h, w], mode: InterpolationMode.Bilinear, align_corners: false);
        using (no_grad())
        {
            flow.select(1, 0).mul_((double)w / wUp);
            flow.select(1, 1).mul_((double)h / hUp);
        }
        return flow.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The pyramid flow on frames whose sides are already multiples of 32.
    /// </summary>
    /// <param name="reference">[n,3,h,w], the frame the flow starts from.</param>
    /// <param name="supporting">[n,3,h,w], the frame the flow points into.</param>
    /// <param name="residuals">If given, receives each level's residual flow (coarsest first), for parity checks.</param>
    public Tensor ComputeFlow(Tensor reference, Tensor supporting, IList<Tensor>? residuals = null)
    {
        long n = reference.shape[0], h = reference.shape[2], w = reference.shape[3];
        if (h % 32 != 0 || w % 32 != 0)
            throw new ArgumentException($"SPyNet.ComputeFlow needs sides that are multiples of 32, got {h}x{w} (use forward, which resizes)");
        using var scope = NewDisposeScope();
        var refs = new List<Tensor> { (reference - mean) / std };
        var supps = new List<Tensor> { (supporting - mean) / std };
        for (int level = 0; level < Levels - 1; level++)
        {
            refs.Add(F.avg_pool2d(refs[^1], kernel_size: 2, stride: 2, count_include_pad: false));
            supps.Add(F.avg_pool2d(supps[^1], kernel_size: 2, stride: 2, count_include_pad: false));
        }
        refs.Reverse();
        supps.Reverse();

        var flow = reference.new_zeros(n, 2, h / 32, w / 32);
        for (int level = 0; level < Levels; level++)
        {
            var flowUp = level == 0
                ? flow
                : F.interpolate(flow, scale_factor: [2.0, 2.0], mode: InterpolationMode.Bilinear, align_corners: true) * 2.0;
            var warped = FlowWarp.Warp(supps[level], flowUp.permute(0, 2, 3, 1), padding: GridSamplePaddingMode.Border);
            var residual = basic_module[level].forward(cat([refs[level], warped, flowUp], 1));
            if (residuals is not null) residuals.Add(residual.detach().clone().MoveToOuterDisposeScope());
            flow = flowUp + residual;
        }
        return flow.MoveToOuterDisposeScope();
    }
}
