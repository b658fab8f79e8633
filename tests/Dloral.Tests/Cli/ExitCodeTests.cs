using System.ComponentModel;
using Dloral.Cli;
using Dloral.Media;
using Dloral.Pipeline;

namespace Dloral.Tests.Cli;

public class ExitCodeTests
{
    public static TheoryData<Exception, int> Cases => new()
    {
        { new MediaException("in.mp4", "not a video ffmpeg can read (Invalid data)"), 2 },
        { new MediaException("out.mp4", "already exists (use --overwrite to replace it)"), 2 },
        { new MediaException("out.mp4", "ffmpeg stopped encoding it (No space left on device)"), 3 },
        { new MediaException("out.mp4", "ffmpeg could not encode it (Conversion failed)"), 3 },
        { new UpscaleOptionsException("unknown model 'x'", "model"), 2 },
        { new UsageException("--start: 'soon' is not a time"), 2 },
        { new IOException("No space left on device"), 3 },
        { new Win32Exception(2, "ffmpeg not found"), 3 },
        { new AggregateException(new IOException("broken pipe")), 3 },
        { new NullReferenceException(), 1 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Exceptions_map_to_the_documented_exit_codes(Exception e, int expected)
    {
        var (code, message) = CommandErrors.Classify(e, CancellationToken.None);
        Assert.Equal(expected, code);
        Assert.False(string.IsNullOrWhiteSpace(message));
    }

    [Fact]
    public void Cancellation_is_130_only_when_the_user_cancelled()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.Equal(130, CommandErrors.Classify(new OperationCanceledException(), cts.Token).Code);
        Assert.Equal(1, CommandErrors.Classify(new OperationCanceledException(), CancellationToken.None).Code);
    }

    [Fact]
    public void Unknown_preset_is_a_bad_argument()
    {
        var r = CliRunner.Run("upscale", "whatever.mp4", "-o", "x.mp4", "--preset", "no-such-preset");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("no-such-preset", r.Stderr);
    }
}
