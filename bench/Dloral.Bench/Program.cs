namespace Dloral.Bench;

public static class Program
{
    public static int Main(string[] args)
    {
        Console.WriteLine("bench: not yet");
        return 0;
    }
}
