using Dloral.Training;

namespace Dloral.Tests.Training;

public class StageScheduleTests
{
    // step, stage, λ_lpips, λ_csd applied, λ_csd as the reference holds it, λ_temporal — the table.
    public static TheoryData<long, TrainingStage, double, double, double, double> Table => new()
    {
        { 0, TrainingStage.Consistency, 0.04, 0, 0, 20 },
        { 5000, TrainingStage.Consistency, 0.04, 0, 0, 20 },
        { 5001, TrainingStage.Enhancement, 2 * (0.02 + 0.98 * 0.001), 0.001, 0.001, 10 * (2 - 0.001) },
        { 5500, TrainingStage.Enhancement, 2 * (0.02 + 0.98 * 0.5), 0.5, 0.5, 15 },
        { 6000, TrainingStage.Enhancement, 2, 1, 1, 10 },
        { 6001, TrainingStage.Enhancement, 2, 1, 1, 10 },
        { 13000, TrainingStage.Enhancement, 2, 1, 1, 10 },
        { 13001, TrainingStage.Consistency, 2, 0, 1, 10 * (1 + 0.001) },
        { 14000, TrainingStage.Consistency, 2, 0, 1, 20 },
        { 14001, TrainingStage.Consistency, 2, 0, 1, 20 },
        { 18000, TrainingStage.Consistency, 2, 0, 1, 20 },
        { 18001, TrainingStage.Enhancement, 2, 1, 1, 10 * (2 - 0.001) },
        { 19000, TrainingStage.Enhancement, 2, 1, 1, 10 },
        { 19001, TrainingStage.Enhancement, 2, 1, 1, 10 },
    };

    [Theory]
    [MemberData(nameof(Table))]
    public void Boundary_steps_follow_the_reference_table(long step, TrainingStage stage, double lpips, double csd, double csdNominal, double temporal)
    {
        var w = new StageSchedule().At(step);
        Assert.Equal(stage, w.Stage);
        Assert.Equal(1.0, w.L2);
        Assert.Equal(lpips, w.Lpips, 12);
        Assert.Equal(csd, w.Csd, 12);
        Assert.Equal(csdNominal, w.CsdNominal, 12);
        Assert.Equal(temporal, w.Temporal, 12);
    }

    [Fact]
    public void Transition_progress_runs_over_the_1000_steps()
    {
        var s = new StageSchedule();
        Assert.Null(s.At(5000).Progress);
        Assert.Equal(0.001, s.At(5001).Progress!.Value, 12);
        Assert.Equal(1.0, s.At(6000).Progress!.Value, 12);
        Assert.Null(s.At(6001).Progress);
        Assert.Equal("to-consistency", s.At(13500).Phase);
        Assert.Equal(15.0, s.At(13500).Temporal, 12);
        Assert.Equal("enhancement", s.At(1_000_000).Phase);
    }

    [Fact]
    public void Switch_points_are_configurable()
    {
        var s = new StageSchedule(new StageScheduleOptions { ConsistencyEnd = 5, EnhancementEnd = 13, SecondConsistencySteps = 5, TransitionSteps = 2 });
        Assert.Equal(TrainingStage.Consistency, s.At(5).Stage);
        Assert.Equal(TrainingStage.Enhancement, s.At(6).Stage);
        Assert.Equal(0.5, s.At(6).Csd, 12);
        Assert.Equal(1.0, s.At(7).Csd, 12);
        Assert.Equal(TrainingStage.Consistency, s.At(14).Stage);
        Assert.Equal(15.0, s.At(14).Temporal, 12);
        Assert.Equal(20.0, s.At(18).Temporal, 12);
        Assert.Equal(TrainingStage.Enhancement, s.At(19).Stage);
        Assert.Equal(15.0, s.At(19).Temporal, 12);
        Assert.Equal(10.0, s.At(21).Temporal, 12);
        Assert.Throws<ArgumentException>(() => new StageSchedule(new StageScheduleOptions { ConsistencyEnd = 10, EnhancementEnd = 5 }));
    }
}
