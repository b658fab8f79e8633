using Dloral.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace Dloral.Training.Losses;

/// <summary>Settings of <see cref="CsdLoss"/> (the reference's train_scripts.sh values).</summary>
public sealed record CsdOptions
{
    /// <summary>Classifier-free guidance scale (cfg_csd / cfg_vsd = 7.5).</summary>
    public double GuidanceScale { get; init; } = 7.5;

    /// <summary>Lowest timestep = ⌊1000·min_dm_step_ratio⌋ (0.02 → 20).</summary>
    public double MinStepRatio { get; init; } = 0.02;

    /// <summary>Timesteps are drawn from [min, ⌊1000·max_dm_step_ratio⌋) (0.5 → 500, exclusive).</summary>
    public double MaxStepRatio { get; init; } = 0.5;
}

/// <summary>
/// Classifier score distillation against a frozen teacher UNet, DLoRAL's <c>CSDLoss.cal_csd</c>:
/// t ~ U[min, max); z_t = add_noise(z, ε, t); the teacher predicts ε_uncond (negative prompt) and ε_text (prompt)
/// without gradient; ε_cfg = ε_uncond + s·(ε_text − ε_uncond); x̂_real = x0(z_t, ε_cfg), x̂_fake = x0(z_t, ε_uncond);
/// w = mean|z − x̂_real| per sample; g = (x̂_fake − x̂_real)/w; loss = mse(z, stopgrad(z − g)).
/// </summary>
public sealed class CsdLoss : IDisposable
{
    private readonly bool _ownsTeacher;

    /// <param name="teacher">A plain (4-channel) SD UNet; it is frozen here.</param>
    /// <param name="schedule">The teacher's DDPM schedule (alphas_cumprod).</param>
    /// <param name="options">Guidance and timestep range.</param>
    /// <param name="ownsTeacher">Dispose the teacher with this object.</param>
    public CsdLoss(UNet2DCondition teacher, DdpmSchedule schedule, CsdOptions? options = null, bool ownsTeacher = true)
    {
        Teacher = teacher ?? throw new ArgumentNullException(nameof(teacher));
        Schedule = schedule ?? throw new ArgumentNullException(nameof(schedule));
        Options = options ?? new CsdOptions();
        _ownsTeacher = ownsTeacher;
        Teacher.eval();
        foreach (var p in Teacher.parameters()) p.requires_grad = false;
        MinStep = (int)(Schedule.NumTrainTimesteps * Options.MinStepRatio);
        MaxStep = (int)(Schedule.NumTrainTimesteps * Options.MaxStepRatio);
        if (MinStep < 0 || MaxStep <= MinStep || MaxStep > Schedule.NumTrainTimesteps)
            throw new ArgumentException($"CSD: timestep range [{MinStep}, {MaxStep}) is empty or outside the schedule's {Schedule.NumTrainTimesteps} steps");
    }

    public UNet2DCondition Teacher { get; }
    public DdpmSchedule Schedule { get; }
    public CsdOptions Options { get; }
    public int MinStep { get; }
    public int MaxStep { get; }

    /// <summary>
    /// The loss for predicted latents [n,4,h,w] (x_denoised, scaled by the VAE factor); prompt / negative prompt
    /// embeddings [1 or n,77,C]; <paramref name="noise"/> like the latents; timesteps drawn from <paramref name="generator"/>.
    /// </summary>
    public Tensor Compute(Tensor latents, Tensor promptEmbeds, Tensor negativeEmbeds, Tensor noise, Generator? generator)
    {
        ArgumentNullException.ThrowIfNull(latents);
        using var scope = NewDisposeScope();
        long n = latents.shape[0];
        var timestep = randint(MinStep, MaxStep, [n], dtype: ScalarType.Int64, generator: generator).to(latents.device);
        var z = latents.to_type(ScalarType.Float32);
        var noisy = Schedule.AddNoise(z, noise.to_type(ScalarType.Float32).to(z.device), timestep);
        Tensor real, fake;
        using (no_grad())
        {
            var tdtype = Teacher.parameters().First().dtype;
            var input = cat([noisy, noisy], 0).detach().to_type(tdtype);
            var ts = cat([timestep, timestep], 0);
            var pos = promptEmbeds.shape[0] == n ? promptEmbeds : promptEmbeds.expand(n, -1, -1);
            var neg = negativeEmbeds.shape[0] == n ? negativeEmbeds : negativeEmbeds.expand(n, -1, -1);
            var ctx = cat([neg, pos], 0).to(tdtype, z.device);
            var pred = Teacher.call(input, ts, ctx).to_type(ScalarType.Float32);
            var uncond = pred.narrow(0, 0, n);
            var text = pred.narrow(0, n, n);
            var guided = uncond + Options.GuidanceScale * (text - uncond);
            var nd = noisy.detach();
            real = Schedule.EpsilonToSample(nd, guided, timestep);
            fake = Schedule.EpsilonToSample(nd, uncond, timestep);
        }
        var weighting = (z.detach() - real).abs().mean([1, 2, 3], keepdim: true);
        var grad = (fake - real) / weighting;
        var target = (z - grad).detach();
        return nn.functional.mse_loss(z, target).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        if (_ownsTeacher) Teacher.Dispose();
        Schedule.Dispose();
    }
}
