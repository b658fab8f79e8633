using System.Diagnostics;
using System.Globalization;

namespace Dloral.Metrics;

/// <summary>
/// Per-stage time of an evaluation (decode, bicubic, each metric, flow). Both wall and process CPU time are kept:
/// on a shared machine only CPU time (user + sys of all threads) says what a stage costs.
/// </summary>
public sealed class EvalTimings
{
    private readonly Dictionary<string, (TimeSpan Wall, TimeSpan Cpu, int Calls)> _stages = [];
    private readonly List<string> _order = [];

    /// <summary>Runs <paramref name="work"/> and adds its wall and CPU time to <paramref name="stage"/>.</summary>
    public T Measure<T>(string stage, Func<T> work)
    {
        var cpu0 = Environment.CpuUsage.TotalTime;
        long t0 = Stopwatch.GetTimestamp();
        try { return work(); }
        finally
        {
            var wall = Stopwatch.GetElapsedTime(t0);
            var cpu = Environment.CpuUsage.TotalTime - cpu0;
            if (!_stages.TryGetValue(stage, out var s)) { _order.Add(stage); s = default; }
            _stages[stage] = (s.Wall + wall, s.Cpu + cpu, s.Calls + 1);
        }
    }

    /// <summary>How many times <paramref name="stage"/> ran (0 if never).</summary>
    public int Calls(string stage) => _stages.TryGetValue(stage, out var s) ? s.Calls : 0;

    /// <summary>Process CPU time (all threads) spent in <paramref name="stage"/>.</summary>
    public TimeSpan Cpu(string stage) => _stages.TryGetValue(stage, out var s) ? s.Cpu : TimeSpan.Zero;

    /// <summary>One line per stage: calls, wall seconds, CPU seconds, in first-use order.</summary>
    public override string ToString()
    {
        var lines = _order.Select(k =>
        {
            var s = _stages[k];
            return string.Create(CultureInfo.InvariantCulture, $"{k,-28} calls {s.Calls,4}  wall {s.Wall.TotalSeconds,8:F2} s  cpu {s.Cpu.TotalSeconds,8:F2} s");
        });
        return string.Join(Environment.NewLine, lines);
    }
}

/// <summary>Null-safe helpers so call sites read the same with timings on or off.</summary>
internal static class EvalTimingsExtensions
{
    public static T Time<T>(this EvalTimings? timings, string stage, Func<T> work) => timings is null ? work() : timings.Measure(stage, work);
}
