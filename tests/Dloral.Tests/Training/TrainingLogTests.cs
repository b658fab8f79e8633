using Dloral.Training;

namespace Dloral.Tests.Training;

/// <summary>The console progress line of training: its speed and ETA follow the current stage, not the run's average.</summary>
public class TrainingLogTests
{
    private static StepRecord Step(long step, string stage, double seconds) =>
        new(step, step, stage, stage, null, 1, 0, 0, 0, 0.01, 0, 0, 0, 0.01, 1, 1e-4, seconds, 0.02);

    [Fact]
    public void Speed_and_eta_are_those_of_the_steps_since_the_last_line()
    {
        var console = new StringWriter();
        var log = new TrainingLog(null, console);
        for (int i = 1; i <= 10; i++) log.Write(Step(i, "base", 0.2));
        log.Progress(Step(10, "base", 0.2), 110);
        for (int i = 11; i <= 20; i++) log.Write(Step(i, "consistency", 0.7));
        log.Progress(Step(20, "consistency", 0.7), 110);
        var lines = console.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("0.20 s/step ETA 00:00:20", lines[0], StringComparison.Ordinal); // 100 steps left at 0.2 s
        Assert.Contains("0.70 s/step ETA 00:01:03", lines[1], StringComparison.Ordinal); // 90 steps left at 0.7 s, not the run's mean 0.45
    }
}
