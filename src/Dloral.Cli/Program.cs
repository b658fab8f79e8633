namespace Dloral.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        Dloral.TorchRuntime.Initialize();
        using var t = TorchSharp.torch.ones(2, 2);
        Console.WriteLine($"torch ok: {t.sum().item<float>()}");
        return 0;
    }
}
