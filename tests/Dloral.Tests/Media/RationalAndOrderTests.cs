using Dloral.Media;

namespace Dloral.Tests.Media;

public class RationalAndOrderTests
{
    [Theory]
    [InlineData("30000/1001", 30000, 1001)]
    [InlineData("60/2", 30, 1)]
    [InlineData("25", 25, 1)]
    [InlineData("29.97", 2997, 100)]
    public void Rational_parses_ffprobe_forms_exactly(string text, long num, long den)
    {
        var r = Rational.Parse(text);
        Assert.Equal(new Rational(num, den), r);
        Assert.Equal(num, r.Numerator);
        Assert.Equal(den, r.Denominator);
    }

    [Fact]
    public void Rational_zero_over_zero_is_no_rate()
    {
        Assert.Null(Rational.TryParse("0/0"));
        Assert.NotEqual(new Rational(30000, 1001), new Rational(2997, 100));
        Assert.Equal("30000/1001", new Rational(60000, 2002).ToString());
    }

    [Fact]
    public void Natural_order_compares_digit_runs_as_numbers()
    {
        string[] names = ["frame_10.png", "frame_2.png", "Frame_1.png", "frame_002b.png", "frame_100.png", "a.png"];
        var sorted = names.Order(NaturalOrder.Instance).ToArray();
        Assert.Equal(["a.png", "Frame_1.png", "frame_2.png", "frame_002b.png", "frame_10.png", "frame_100.png"], sorted);
    }
}
