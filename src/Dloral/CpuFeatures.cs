namespace Dloral;

/// <summary>
/// What the CPU can do, read once from /proc/cpuinfo (Linux; elsewhere everything is unknown). The compact model's
/// speed depends on it: oneDNN runs bfloat16 natively only with AVX512-BF16 or AMX and emulates it otherwise (about
/// 50× slower than float32 on an AVX2-only EPYC), and AVX-512 roughly doubles float32 convolution throughput.
/// </summary>
public sealed record CpuFeatures(string? ModelName, IReadOnlySet<string> Flags)
{
    private static readonly Lazy<CpuFeatures> LazyCurrent = new(() => Read("/proc/cpuinfo"));

    /// <summary>This machine's CPU.</summary>
    public static CpuFeatures Current => LazyCurrent.Value;

    /// <summary>Whether the flags were readable (false: every answer below is null).</summary>
    public bool Known => Flags.Count > 0;

    /// <summary>Native bfloat16 matrix instructions (avx512_bf16 or amx_bf16); null when unknown.</summary>
    public bool? HasNativeBFloat16 => Known ? Flags.Contains("avx512_bf16") || Flags.Contains("amx_bf16") : null;

    /// <summary>The widest vector unit: "AVX-512", "AVX2", "AVX" or "SSE" (null when unknown).</summary>
    public string? VectorUnit => !Known ? null
        : Flags.Contains("avx512f") ? "AVX-512" : Flags.Contains("avx2") ? "AVX2" : Flags.Contains("avx") ? "AVX" : "SSE";

    /// <summary>One line for logs and benchmark reports, e.g. "AMD EPYC, AVX2, no native bfloat16".</summary>
    public string Describe() => !Known ? "unknown CPU"
        : $"{ModelName ?? "unknown model"}, {VectorUnit}, {(HasNativeBFloat16 == true ? "native bfloat16" : "no native bfloat16")}";

    /// <summary>Parses a cpuinfo file (the first processor's "model name" and "flags"); a missing file gives an unknown CPU.</summary>
    public static CpuFeatures Read(string path)
    {
        try
        {
            return Parse(File.Exists(path) ? File.ReadLines(path) : []);
        }
        catch (IOException) { return Parse([]); }
        catch (UnauthorizedAccessException) { return Parse([]); }
    }

    /// <summary>Parses cpuinfo lines ("key\t: value").</summary>
    public static CpuFeatures Parse(IEnumerable<string> lines)
    {
        string? model = null;
        HashSet<string>? flags = null;
        foreach (var line in lines)
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0) continue;
            string key = line[..colon].Trim(), value = line[(colon + 1)..].Trim();
            if (key == "model name") model ??= value;
            else if (key == "flags" && flags is null) flags = new HashSet<string>(value.Split(' ', StringSplitOptions.RemoveEmptyEntries), StringComparer.Ordinal);
            if (model is not null && flags is not null) break;
        }
        return new CpuFeatures(model, flags ?? new HashSet<string>(StringComparer.Ordinal));
    }
}
