using static TorchSharp.torch;

namespace Dloral.Pipeline;

/// <summary>
/// Geometric self-ensemble at inference: a network's prediction averaged over dihedral transforms of its input, each
/// mapped back (the classic SR test-time augmentation, EDSR's "+"). The trainers' 8-way dihedral augmentation makes
/// every transform a valid view; each costs one more network pass.
/// </summary>
public static class SelfEnsemble
{
    /// <summary>The accepted sizes: identity; + horizontal flip; + vertical flip and 180°; + the four transposed views.</summary>
    public static readonly int[] Sizes = [1, 2, 4, 8];

    /// <summary>Throws unless <paramref name="size"/> is one of <see cref="Sizes"/>.</summary>
    public static void Validate(int size)
    {
        if (Array.IndexOf(Sizes, size) < 0)
            throw new ArgumentOutOfRangeException(nameof(size), size, $"self-ensemble size must be one of {string.Join(", ", Sizes)}");
    }

    /// <summary>Transform k of [n,c,h,w] (bit 2: transpose h and w, then bit 0: flip w, bit 1: flip h).</summary>
    public static Tensor Apply(Tensor x, int k)
    {
        var y = (k & 4) != 0 ? x.transpose(2, 3) : x.alias();
        if ((k & 1) != 0) y = y.flip(3);
        if ((k & 2) != 0) y = y.flip(2);
        return y.contiguous();
    }

    /// <summary>The inverse of <see cref="Apply"/>: the flips undone, then the transpose.</summary>
    public static Tensor Invert(Tensor y, int k)
    {
        var x = y;
        if ((k & 2) != 0) x = x.flip(2);
        if ((k & 1) != 0) x = x.flip(3);
        if ((k & 4) != 0) x = x.transpose(2, 3);
        return x.contiguous();
    }

    /// <summary>
    /// mean over k &lt; <paramref name="size"/> of fromView(f(toView(x, k)), k), accumulated in float32 (or float64) and
    /// returned in f's dtype; size 1 is f(x) itself. The views default to <see cref="Apply"/> / <see cref="Invert"/> of
    /// the tensor's own grid; a latent model passes its codec's exact transforms (<see cref="Codecs.IDihedralLatentCodec"/>).
    /// </summary>
    public static Tensor Predict(Func<Tensor, Tensor> f, Tensor x, int size,
                                 Func<Tensor, int, Tensor>? toView = null, Func<Tensor, int, Tensor>? fromView = null)
    {
        ArgumentNullException.ThrowIfNull(f);
        ArgumentNullException.ThrowIfNull(x);
        Validate(size);
        if (size == 1) return f(x);
        toView ??= Apply;
        fromView ??= Invert;
        using var scope = NewDisposeScope();
        Tensor? sum = null;
        var dtype = ScalarType.Float32;
        for (int k = 0; k < size; k++)
        {
            using var inner = NewDisposeScope();
            var y = f(k == 0 ? x : toView(x, k));
            dtype = y.dtype;
            var wide = y.to_type(y.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32);
            var back = k == 0 ? wide : fromView(wide, k);
            if (sum is null) sum = back.clone().MoveToOuterDisposeScope();
            else sum.add_(back);
        }
        return sum!.div_(size).to_type(dtype).MoveToOuterDisposeScope();
    }
}
