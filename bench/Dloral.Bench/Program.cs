namespace Dloral.Bench;

public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "sd") return SdForwardBench.Run(args[1..]);
        Console.WriteLine("bench: sd (unet|vae-encode|vae-decode|load) [fp32|bf16]");
        return 0;
    }
}
