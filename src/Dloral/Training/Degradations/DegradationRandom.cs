namespace Dloral.Training.Degradations;

/// <summary>
/// A small seeded generator (SplitMix64) for the scalar random choices of the degradation and the
/// datasets. Its own algorithm so a seed gives the same parameters on every .NET version and
/// platform; tensor noise uses a <c>torch.Generator</c> seeded from <see cref="NextSeed"/>.
/// </summary>
public sealed class DegradationRandom
{
    private ulong _state;

    public DegradationRandom(long seed) => _state = (ulong)seed ^ 0x9E3779B97F4A7C15UL;

    /// <summary>Mixes a seed with extra keys (e.g. an item index) into an independent seed.</summary>
    public static long Derive(long seed, params long[] keys)
    {
        ulong h = (ulong)seed;
        foreach (var k in keys)
            h = Mix(h ^ Mix((ulong)k + 0x632BE59BD9B4E019UL));
        return (long)Mix(h);
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>A seed for a torch.Generator (non-negative, fits in a long).</summary>
    public ulong NextSeed() => NextUInt64() >> 1;

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    public double Uniform(double lo, double hi) => lo + (hi - lo) * NextDouble();

    public double Uniform(double[] range) => Uniform(range[0], range[1]);

    /// <summary>True with probability p.</summary>
    public bool Chance(double p) => NextDouble() < p;

    /// <summary>Integer uniform in [lo, hi] (inclusive).</summary>
    public int Int(int lo, int hiInclusive) => lo + (int)(NextUInt64() % (ulong)(hiInclusive - lo + 1));

    /// <summary>An index drawn with the given (unnormalised) weights, like Python's random.choices.</summary>
    public int Weighted(double[] weights)
    {
        double total = weights.Sum();
        double u = NextDouble() * total, acc = 0;
        for (int i = 0; i < weights.Length; i++)
        {
            acc += weights[i];
            if (u < acc) return i;
        }
        return weights.Length - 1;
    }

    public T Pick<T>(IReadOnlyList<T> items) => items[Int(0, items.Count - 1)];
}
