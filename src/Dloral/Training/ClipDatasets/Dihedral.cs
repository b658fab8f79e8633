using static TorchSharp.torch;

namespace Dloral.Training.ClipDatasets;

/// <summary>
/// The 8 symmetries of the square (rotations by 0/90/180/270° and their vertical flips), applied
/// to the last two dimensions, so one call transforms every frame of a [T,C,H,W] clip identically.
/// Index order as the reference's Augment_RGB_torch (transform0..7).
/// </summary>
public static class Dihedral
{
    public const int Count = 8;

    public static Tensor Apply(Tensor x, int index)
    {
        if (index is < 0 or >= Count) throw new ArgumentOutOfRangeException(nameof(index), index, "Dihedral index must be in 0..7.");
        if (index == 0) return x.alias();
        using var scope = NewDisposeScope();
        int k = index % 4;
        var y = k == 0 ? x.alias() : rot90(x, k, (-1, -2));
        if (index >= 4) y = y.flip(-2);
        return y.contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>The inverse transform's index (rotations invert to the opposite angle; flipped ones are involutions).</summary>
    public static int Inverse(int index) => index switch
    {
        1 => 3,
        3 => 1,
        _ => index,
    };
}
