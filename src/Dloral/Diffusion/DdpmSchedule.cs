using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Diffusion;

/// <summary>What the denoiser predicts (diffusers <c>prediction_type</c>).</summary>
public enum PredictionType
{
    Epsilon,
    Sample,
    VPrediction,
}

/// <summary>
/// The DDPM noise schedule of a diffusers <c>scheduler_config.json</c> (diffusers 0.25
/// <c>DDPMScheduler</c>): betas, alphas, <c>alphas_cumprod</c> (float32, computed with the same
/// libtorch ops as the reference so they match bit for bit), plus the eps ↔ x0 conversions and
/// <c>AddNoise</c>. DLoRAL itself never steps a scheduler (it hard-codes t = 1 and z − ε̂), but the
/// training losses and any multi-step use need these.
/// </summary>
public sealed class DdpmSchedule : IDisposable
{
    /// <summary>Betas [T] float32 on the CPU.</summary>
    public Tensor Betas { get; }
    /// <summary>1 − betas [T] float32.</summary>
    public Tensor Alphas { get; }
    /// <summary>Cumulative product of alphas [T] float32 (ᾱ_t).</summary>
    public Tensor AlphasCumprod { get; }
    public int NumTrainTimesteps { get; }
    public double BetaStart { get; }
    public double BetaEnd { get; }
    public string BetaSchedule { get; }
    public PredictionType PredictionType { get; }
    public int StepsOffset { get; }
    public string TimestepSpacing { get; }

    /// <summary>Builds the schedule from explicit values (the diffusers defaults when omitted).</summary>
    public DdpmSchedule(
        int numTrainTimesteps = 1000,
        double betaStart = 0.0001,
        double betaEnd = 0.02,
        string betaSchedule = "linear",
        PredictionType predictionType = PredictionType.Epsilon,
        int stepsOffset = 0,
        string timestepSpacing = "leading",
        double[]? trainedBetas = null)
    {
        if (numTrainTimesteps <= 0)
            throw new ArgumentOutOfRangeException(nameof(numTrainTimesteps), numTrainTimesteps, "num_train_timesteps must be positive");
        NumTrainTimesteps = numTrainTimesteps;
        BetaStart = betaStart;
        BetaEnd = betaEnd;
        BetaSchedule = betaSchedule;
        PredictionType = predictionType;
        StepsOffset = stepsOffset;
        TimestepSpacing = timestepSpacing;

        float[] betas;
        if (trainedBetas is not null)
        {
            if (trainedBetas.Length != numTrainTimesteps)
                throw new ArgumentException($"trained_betas has {trainedBetas.Length} values but num_train_timesteps is {numTrainTimesteps}");
            betas = trainedBetas.Select(b => (float)b).ToArray();
        }
        else
        {
            betas = betaSchedule switch
            {
                "linear" => ReferenceLinspace(betaStart, betaEnd, numTrainTimesteps),
                // diffusers: linspace(√start, √end, T, float32) ** 2 (pow 2 is x·x in float32).
                "scaled_linear" => ReferenceLinspace(Math.Sqrt(betaStart), Math.Sqrt(betaEnd), numTrainTimesteps).Select(x => x * x).ToArray(),
                "squaredcos_cap_v2" => CosineBetas(numTrainTimesteps),
                _ => throw new NotSupportedException(
                    $"beta_schedule '{betaSchedule}' is not supported (supported: linear, scaled_linear, squaredcos_cap_v2)"),
            };
        }
        var alphas = betas.Select(b => 1f - b).ToArray();
        // torch.cumprod on the CPU accumulates float32 inputs in double.
        var cumprod = new float[alphas.Length];
        double acc = 1;
        for (var i = 0; i < alphas.Length; i++)
        {
            acc *= alphas[i];
            cumprod[i] = (float)acc;
        }
        Betas = tensor(betas);
        Alphas = tensor(alphas);
        AlphasCumprod = tensor(cumprod);
    }

    /// <summary>
    /// <c>torch.linspace(start, end, steps, dtype=float32)</c> exactly as the reference's CPU build
    /// computed it (torch 1.13, AVX2 kernel with FMA contraction, 8-wide vectors processed two at a
    /// time, scalar tail; first half counted up from start, second half down from end). libtorch 2.10
    /// rounds ~23 % of the SD betas differently (1 ulp); emulating the kernel keeps the schedule
    /// bit-identical to the reference's alphas_cumprod.
    /// </summary>
    internal static float[] ReferenceLinspace(double startValue, double endValue, int steps)
    {
        var result = new float[steps];
        if (steps == 1)
        {
            result[0] = (float)startValue;
            return result;
        }
        float start = (float)startValue, end = (float)endValue;
        var step = (end - start) / (steps - 1);
        var halfway = steps / 2;
        float Value(long idx) => idx < halfway
            ? MathF.FusedMultiplyAdd(step, idx, start)
            : MathF.FusedMultiplyAdd(-step, steps - idx - 1, end);
        const int width = 8;
        var i = 0;
        for (; i <= steps - 2 * width; i += 2 * width)
        {
            for (var v = i; v < i + 2 * width; v += width)
            {
                // Vectorized<float>::arange(base, step): base + j·step, j = 0..7 (fused).
                var b = Value(v);
                result[v] = b;
                for (var j = 1; j < width; j++)
                    result[v + j] = MathF.FusedMultiplyAdd(j, step, b);
            }
        }
        for (; i < steps; i++)
            result[i] = Value(i);
        return result;
    }

    // diffusers betas_for_alpha_bar(alpha_transform_type="cosine"), computed in double then cast.
    private static float[] CosineBetas(int n)
    {
        static double AlphaBar(double t) => Math.Pow(Math.Cos((t + 0.008) / 1.008 * Math.PI / 2), 2);
        var b = new float[n];
        for (var i = 0; i < n; i++)
        {
            double t1 = (double)i / n, t2 = (double)(i + 1) / n;
            b[i] = (float)Math.Min(1 - AlphaBar(t2) / AlphaBar(t1), 0.999);
        }
        return b;
    }

    /// <summary>Reads a diffusers <c>scheduler_config.json</c> (any scheduler class: only the beta
    /// schedule keys are used, as DLoRAL reads SD 2.1's PNDM config with DDPMScheduler).</summary>
    public static DdpmSchedule FromConfigFile(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"scheduler config not found: {path}", path);
        try
        {
            return FromConfigJson(File.ReadAllText(path));
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or NotSupportedException or ArgumentException)
        {
            throw new InvalidDataException($"{path}: invalid scheduler config: {e.Message}", e);
        }
    }

    /// <summary>Parses the JSON text of a scheduler config.</summary>
    public static DdpmSchedule FromConfigJson(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        // Our golden reference files wrap the values in {"config": {...}}; accept both shapes.
        if (root.TryGetProperty("config", out var inner) && inner.ValueKind == JsonValueKind.Object)
            root = inner;

        int GetInt(string name, int def) =>
            root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : def;
        double GetDouble(string name, double def) =>
            root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : def;
        string GetString(string name, string def) =>
            root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : def;

        double[]? trained = null;
        if (root.TryGetProperty("trained_betas", out var tb) && tb.ValueKind == JsonValueKind.Array)
            trained = tb.EnumerateArray().Select(e => e.GetDouble()).ToArray();

        var prediction = GetString("prediction_type", "epsilon") switch
        {
            "epsilon" => PredictionType.Epsilon,
            "sample" => PredictionType.Sample,
            "v_prediction" => PredictionType.VPrediction,
            var other => throw new NotSupportedException($"prediction_type '{other}' is not supported"),
        };

        return new DdpmSchedule(
            GetInt("num_train_timesteps", 1000),
            GetDouble("beta_start", 0.0001),
            GetDouble("beta_end", 0.02),
            GetString("beta_schedule", "linear"),
            prediction,
            GetInt("steps_offset", 0),
            GetString("timestep_spacing", "leading"),
            trained);
    }

    /// <summary>The inference timesteps of <c>set_timesteps(n)</c> (diffusers "leading", "trailing"
    /// and "linspace" spacings). For SD 2.1 and n = 1 this is [1].</summary>
    public long[] InferenceTimesteps(int numInferenceSteps)
    {
        if (numInferenceSteps <= 0 || numInferenceSteps > NumTrainTimesteps)
            throw new ArgumentOutOfRangeException(nameof(numInferenceSteps), numInferenceSteps, $"must be in 1..{NumTrainTimesteps}");
        var n = NumTrainTimesteps;
        var result = new long[numInferenceSteps];
        switch (TimestepSpacing)
        {
            case "leading":
                var ratio = n / numInferenceSteps;
                for (var i = 0; i < numInferenceSteps; i++)
                    result[i] = (long)(numInferenceSteps - 1 - i) * ratio + StepsOffset;
                break;
            case "trailing":
                var r = (double)n / numInferenceSteps;
                for (var i = 0; i < numInferenceSteps; i++)
                    result[i] = (long)Math.Round(n - i * r, MidpointRounding.ToEven) - 1;
                break;
            case "linspace":
                for (var i = 0; i < numInferenceSteps; i++)
                {
                    var v = numInferenceSteps == 1 ? 0 : (double)(n - 1) * (numInferenceSteps - 1 - i) / (numInferenceSteps - 1);
                    result[i] = (long)Math.Round(v, MidpointRounding.ToEven);
                }
                break;
            default:
                throw new NotSupportedException($"timestep_spacing '{TimestepSpacing}' is not supported");
        }
        return result;
    }

    /// <summary>√ᾱ_t and √(1−ᾱ_t) for per-sample timesteps, shaped [B,1,1,...] to broadcast over
    /// a sample shaped like <paramref name="like"/>, on its device and dtype.</summary>
    private (Tensor sqrtAlpha, Tensor sqrtOneMinus) Coefficients(Tensor timesteps, Tensor like)
    {
        if (timesteps.dtype != ScalarType.Int64)
            timesteps = timesteps.to(ScalarType.Int64);
        var t = timesteps.cpu().flatten();
        var min = t.min().item<long>();
        var max = t.max().item<long>();
        if (min < 0 || max >= NumTrainTimesteps)
            throw new ArgumentOutOfRangeException(nameof(timesteps), $"timesteps must be in 0..{NumTrainTimesteps - 1}, got {min}..{max}");
        var ac = AlphasCumprod.index_select(0, t);
        // diffusers computes the square roots in float32 before moving to the sample's dtype.
        var sa = ac.sqrt();
        var sb = (1.0f - ac).sqrt();
        var shape = new long[like.dim()];
        Array.Fill(shape, 1L);
        shape[0] = t.shape[0];
        if (t.shape[0] != 1 && t.shape[0] != like.shape[0])
            throw new ArgumentException($"{t.shape[0]} timesteps for a batch of {like.shape[0]}");
        return (sa.reshape(shape).to(like.dtype, like.device), sb.reshape(shape).to(like.dtype, like.device));
    }

    /// <summary>q(x_t | x_0): √ᾱ_t·x0 + √(1−ᾱ_t)·noise (diffusers <c>add_noise</c>).</summary>
    public Tensor AddNoise(Tensor originalSamples, Tensor noise, Tensor timesteps)
    {
        using var scope = NewDisposeScope();
        var (a, b) = Coefficients(timesteps, originalSamples);
        return (a * originalSamples + b * noise).MoveToOuterDisposeScope();
    }

    /// <summary>x0 from x_t and the predicted noise: (x_t − √(1−ᾱ_t)·ε) / √ᾱ_t.</summary>
    public Tensor EpsilonToSample(Tensor sample, Tensor epsilon, Tensor timesteps)
    {
        using var scope = NewDisposeScope();
        var (a, b) = Coefficients(timesteps, sample);
        return ((sample - b * epsilon) / a).MoveToOuterDisposeScope();
    }

    /// <summary>ε from x_t and x0: (x_t − √ᾱ_t·x0) / √(1−ᾱ_t).</summary>
    public Tensor SampleToEpsilon(Tensor sample, Tensor originalSample, Tensor timesteps)
    {
        using var scope = NewDisposeScope();
        var (a, b) = Coefficients(timesteps, sample);
        return ((sample - a * originalSample) / b).MoveToOuterDisposeScope();
    }

    /// <summary>x0 from the model output according to <see cref="PredictionType"/>
    /// (epsilon, sample, or v: x0 = √ᾱ·x_t − √(1−ᾱ)·v).</summary>
    public Tensor PredictOriginalSample(Tensor sample, Tensor modelOutput, Tensor timesteps)
    {
        using var scope = NewDisposeScope();
        var (a, b) = Coefficients(timesteps, sample);
        var x0 = PredictionType switch
        {
            PredictionType.Epsilon => (sample - b * modelOutput) / a,
            PredictionType.Sample => modelOutput.alias(),
            PredictionType.VPrediction => a * sample - b * modelOutput,
            _ => throw new InvalidOperationException(),
        };
        return x0.MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        Betas.Dispose();
        Alphas.Dispose();
        AlphasCumprod.Dispose();
    }
}
