using System.Text.Json.Serialization;

namespace Dloral.Training;

/// <summary>Which parameter set trains (the reference's <c>stages</c>: 0 = consistency, 1 = quality/enhancement).</summary>
public enum TrainingStage
{
    /// <summary>C-LoRA + CFR (SPyNet frozen) + the 8-channel conv_in.</summary>
    Consistency = 0,

    /// <summary>D-LoRA + conv_in.</summary>
    Enhancement = 1,

    /// <summary>Models trained from scratch only: the base UNet (+ conv_in, prompt) as single-frame SR, before the reference's
    /// stages — the stand-in for the pretrained SD prior. No CFR: the UNet sees [z_cur ‖ z_cur].</summary>
    Base = 2,

    /// <summary>Models trained from scratch only: SPyNet on the exact flow of the dataset's synthetic camera motion (the
    /// reference uses a pretrained SPyNet, which does not exist offline).</summary>
    Flow = 3,
}

/// <summary>
/// Switch points and base loss weights of DLoRAL's alternating schedule (the reference's <c>train_scripts.sh</c>:
/// quality_iter 5000, quality_iter_1_final 13000, quality_iter_2 5000, 1000-step transitions, λ_l2 1, λ_lpips 2,
/// λ_vsd(csd) 1, λ_consistency 10).
/// </summary>
public sealed record StageScheduleOptions
{
    /// <summary>Last step of the first consistency stage (the reference's quality_iter).</summary>
    public long ConsistencyEnd { get; init; } = 5000;

    /// <summary>Last step of the first enhancement stage (quality_iter_1_final).</summary>
    public long EnhancementEnd { get; init; } = 13000;

    /// <summary>Length of the second consistency stage, its transition included (quality_iter_2).</summary>
    public long SecondConsistencySteps { get; init; } = 5000;

    /// <summary>Length of each smooth transition (hard-coded 1000 in the reference).</summary>
    public long TransitionSteps { get; init; } = 1000;

    public double LambdaL2 { get; init; } = 1.0;
    public double LambdaLpips { get; init; } = 2.0;
    public double LambdaCsd { get; init; } = 1.0;
    public double LambdaTemporal { get; init; } = 10.0;

    /// <summary>Steps of the <see cref="TrainingStage.Base"/> stage run first (0 = none: models with a pretrained prior).</summary>
    public long BaseSteps { get; init; }

    /// <summary>λ_lpips of the base stage (default 0: pure L2, for PSNR; the perceptual net costs more than a compact UNet).</summary>
    public double BaseLambdaLpips { get; init; }

    /// <summary>
    /// Base stage on the video path for three clips in four: <c>[warped previous ‖ CFR-fused current]</c> (CFR frozen), so the
    /// base learns to use the previous frame; the fourth clip keeps <c>[z ‖ z]</c> (a video's first frame). The hand-over
    /// then keeps conv_in's previous-latent half instead of folding it. Default false: single-frame SR only.
    /// </summary>
    public bool BasePreviousFrame { get; init; }

    /// <summary>Steps of the <see cref="TrainingStage.Flow"/> stage, after the base stage (0 = none).</summary>
    public long FlowSteps { get; init; }

    /// <summary>Steps before the reference's table starts (its step 0 is global step <see cref="BaseSteps"/> + <see cref="FlowSteps"/>).</summary>
    public long PretrainSteps => BaseSteps + FlowSteps;

    /// <summary>Throws when the switch points are not ordered.</summary>
    public void Validate()
    {
        if (ConsistencyEnd < 0 || EnhancementEnd <= ConsistencyEnd || SecondConsistencySteps < 0 || TransitionSteps <= 0 || BaseSteps < 0 || FlowSteps < 0)
            throw new ArgumentException($"stage schedule: need 0 <= consistency_end ({ConsistencyEnd}) < enhancement_end ({EnhancementEnd}), second_consistency_steps ({SecondConsistencySteps}) >= 0 and transition_steps ({TransitionSteps}) > 0, base_steps ({BaseSteps}) and flow_steps ({FlowSteps}) >= 0");
    }
}

/// <summary>The loss weights and trainable stage at one step.</summary>
/// <param name="Step">The global step (the reference's global_step, counted from 0).</param>
/// <param name="Stage">Which parameters train.</param>
/// <param name="Phase">Human-readable phase ("consistency", "to-enhancement", ...).</param>
/// <param name="Progress">p ∈ (0,1] inside a transition, else null.</param>
/// <param name="L2">λ_l2.</param>
/// <param name="Lpips">λ_lpips (perceptual).</param>
/// <param name="CsdNominal">The reference's λ_vsd value (it keeps 1 in the second consistency stage, the table's "—").</param>
/// <param name="Temporal">λ_temporal (the reference's λ_consistency).</param>
public sealed record StageWeights(long Step, TrainingStage Stage, string Phase, double? Progress, double L2, double Lpips, double CsdNominal, double Temporal)
{
    /// <summary>The CSD weight actually applied: the reference computes CSD only in the enhancement stage.</summary>
    [JsonIgnore]
    public double Csd => Stage == TrainingStage.Enhancement ? CsdNominal : 0.0;
}

/// <summary>
/// DLoRAL's stage schedule, exactly as the reference's training loop (train_DLoRAL.py) computes it:
/// <code>
/// steps        stage            λ_lpips          λ_csd  λ_temporal
/// 0–5000       consistency      0.04             0      20
/// 5001–6000    → enhancement    2·(0.02+0.98p)   p      10·(2−p)
/// 6001–13000   enhancement      2                1      10
/// 13001–14000  → consistency    2                —      10·(1+p)
/// 14001–18000  consistency      2                —      20
/// 18001–19000  → enhancement    2                1      10·(2−p)
/// after        enhancement      2                1      10
/// </code>
/// p = (step − stage start) / 1000; λ_l2 = 1 throughout; "—" = the reference keeps λ_vsd = 1 but skips CSD in
/// the consistency stage (<see cref="StageWeights.Csd"/> is 0 there). Models trained from scratch may run a base stage
/// (<see cref="StageScheduleOptions.BaseSteps"/>) and a flow stage (<see cref="StageScheduleOptions.FlowSteps"/>) first; the
/// table then starts after them.
/// </summary>
public sealed class StageSchedule
{
    public StageSchedule(StageScheduleOptions? options = null)
    {
        Options = options ?? new StageScheduleOptions();
        Options.Validate();
    }

    public StageScheduleOptions Options { get; }

    /// <summary>The weights at <paramref name="step"/>.</summary>
    public StageWeights At(long step)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, "steps count from 0");
        var o = Options;
        if (step < o.BaseSteps)
            return new(step, TrainingStage.Base, "base", null, o.LambdaL2, o.BaseLambdaLpips, 0.0, 0.0);
        if (step < o.PretrainSteps)
            return new(step, TrainingStage.Flow, "flow", null, 0.0, 0.0, 0.0, 0.0);
        long global = step;
        step -= o.PretrainSteps;
        double l2 = o.LambdaL2, lp = o.LambdaLpips, csd = o.LambdaCsd, tc = o.LambdaTemporal;
        long t = o.TransitionSteps;
        long secondEnd = o.EnhancementEnd + o.SecondConsistencySteps;
        if (step <= o.ConsistencyEnd)
            return new(global, TrainingStage.Consistency, "consistency", null, l2, lp * 0.02, 0.0, tc * 2);
        if (step <= o.EnhancementEnd)
        {
            if (step <= o.ConsistencyEnd + t)
            {
                double p = (step - o.ConsistencyEnd) / (double)t;
                return new(global, TrainingStage.Enhancement, "to-enhancement", p, l2, lp * (0.02 + p * 0.98), csd * p, tc * (2.0 - p));
            }
            return new(global, TrainingStage.Enhancement, "enhancement", null, l2, lp, csd, tc);
        }
        if (step <= secondEnd)
        {
            if (step <= o.EnhancementEnd + t)
            {
                double p = (step - o.EnhancementEnd) / (double)t;
                return new(global, TrainingStage.Consistency, "to-consistency", p, l2, lp, csd, tc * (1.0 + p));
            }
            return new(global, TrainingStage.Consistency, "consistency", null, l2, lp, csd, tc * 2);
        }
        if (step <= secondEnd + t)
        {
            double p = (step - secondEnd) / (double)t;
            return new(global, TrainingStage.Enhancement, "to-enhancement", p, l2, lp, csd, tc * (2.0 - p));
        }
        return new(global, TrainingStage.Enhancement, "enhancement", null, l2, lp, csd, tc);
    }
}
