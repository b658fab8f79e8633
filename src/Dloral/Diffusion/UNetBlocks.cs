using static TorchSharp.torch;

namespace Dloral.Diffusion;

/// <summary>A UNet down block: returns the new hidden states and appends its skip connections to <c>residuals</c>.</summary>
public abstract class UNetDownBlock : nn.Module
{
    protected UNetDownBlock(string name) : base(name) { }

    /// <summary>Number of skip tensors this block appends (resnets + downsampler).</summary>
    public abstract int ResidualCount { get; }

    public abstract Tensor Forward(Tensor hidden, Tensor temb, Tensor? encoderHiddenStates, List<Tensor> residuals);
}

/// <summary>A UNet up block: consumes <see cref="ResnetCount"/> skip tensors (last first).</summary>
public abstract class UNetUpBlock : nn.Module
{
    protected UNetUpBlock(string name) : base(name) { }

    public abstract int ResnetCount { get; }

    public abstract Tensor Forward(Tensor hidden, IReadOnlyList<Tensor> skips, Tensor temb, Tensor? encoderHiddenStates, long[]? upsampleSize);
}

/// <summary>A UNet mid block.</summary>
public abstract class UNetMidBlock : nn.Module
{
    protected UNetMidBlock(string name) : base(name) { }

    public abstract Tensor Forward(Tensor hidden, Tensor temb, Tensor? encoderHiddenStates);
}
