using System.Diagnostics;
using System.Text.Json;

namespace Dloral.Bench;

/// <summary>Shared helpers: run a process, find the repository, write results.</summary>
internal static class BenchUtil
{
    public static string RepoRoot { get; } = FindRepoRoot();

    private static string FindRepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Dloral.slnx"))) return d.FullName;
        return Directory.GetCurrentDirectory();
    }

    public static string ResultsDir => Directory.CreateDirectory(Path.Combine(RepoRoot, "bench", "results")).FullName;

    /// <summary>Runs a program to completion; throws with its stderr when it fails.</summary>
    public static byte[] Run(string file, IEnumerable<string> args, byte[]? stdin = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin is not null, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var outStream = new MemoryStream();
        var copy = p.StandardOutput.BaseStream.CopyToAsync(outStream);
        if (stdin is not null)
        {
            p.StandardInput.BaseStream.Write(stdin);
            p.StandardInput.Close();
        }
        copy.Wait();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({p.ExitCode}): {err.Result}");
        return outStream.ToArray();
    }

    /// <summary>The value after <paramref name="name"/> in <paramref name="args"/>, or <paramref name="fallback"/>.</summary>
    public static string Arg(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }

    /// <summary>The --repeat and --threads of an op-level bench, with libtorch set up for it (threads, freed-memory reuse).</summary>
    public static (int Repeat, int Threads) OpBenchSetup(string[] args)
    {
        int repeat = int.Parse(Arg(args, "--repeat", "10"), System.Globalization.CultureInfo.InvariantCulture);
        int threads = int.Parse(Arg(args, "--threads", "2"), System.Globalization.CultureInfo.InvariantCulture);
        Dloral.TorchRuntime.Initialize(threads);
        Dloral.TorchRuntime.ReuseFreedMemory();
        return (repeat, threads);
    }

    /// <summary>Median wall time in ms of <paramref name="op"/> over <paramref name="repeat"/> runs after a warm-up run; each result is disposed.</summary>
    public static double MedianMs(Func<TorchSharp.torch.Tensor> op, int repeat)
    {
        var times = new List<double>();
        for (int i = 0; i <= repeat; i++)
        {
            var sw = Stopwatch.StartNew();
            using (var y = op()) { }
            if (i > 0) times.Add(sw.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }

    /// <summary>Writes bench/results/NAME.md (for benches whose result is a report, not a row set) and prints it.</summary>
    public static void WriteMarkdown(string name, string markdown)
    {
        var mdPath = Path.Combine(ResultsDir, name + ".md");
        File.WriteAllText(mdPath, markdown);
        Console.WriteLine(markdown);
        Console.WriteLine($"results: {mdPath}");
    }

    public static void WriteResults(string name, object json, string markdown)
    {
        var jsonPath = Path.Combine(ResultsDir, name + ".json");
        File.WriteAllText(jsonPath, JsonSerializer.Serialize(json, new JsonSerializerOptions { WriteIndented = true }) + "\n");
        var mdPath = Path.Combine(ResultsDir, name + ".md");
        File.WriteAllText(mdPath, markdown);
        Console.WriteLine(markdown);
        Console.WriteLine($"results: {jsonPath}, {mdPath}");
    }
}
