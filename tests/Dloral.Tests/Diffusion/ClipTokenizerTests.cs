using System.Text.Json;
using Dloral.Diffusion;
using Dloral.Tests.Support;

namespace Dloral.Tests.Diffusion;

public class ClipTokenizerTests
{
    public static TheoryData<string> Folders => new() { "tiny_clip_text", "tiny_sd" };

    [Theory]
    [MemberData(nameof(Folders))]
    public void All_golden_cases_match_the_ftfy_path_exactly(string folder)
    {
        var tok = ClipTokenizer.FromFolder(GoldenData.PathOf(folder, "tokenizer"));
        Assert.Equal(77, tok.ModelMaxLength);
        Assert.Equal(0, tok.PadId);
        Assert.Equal(689, tok.BosId);
        Assert.Equal(690, tok.EosId);

        using var doc = GoldenData.Json("tiny_clip_text", "tokenizer_cases.json");
        var cases = doc.RootElement.GetProperty("cases").EnumerateArray().ToList();
        Assert.Equal(8, cases.Count);
        foreach (var c in cases)
        {
            var prompt = c.GetProperty("prompt").GetString()!;
            var ftfy = c.GetProperty("ftfy");
            var enc = tok.Encode(prompt);
            Assert.Equal(Longs(ftfy, "input_ids_77"), enc.InputIds);
            Assert.Equal(Longs(ftfy, "attention_mask_77"), enc.AttentionMask);
            var tokens = ftfy.GetProperty("tokens").EnumerateArray().Select(e => e.GetString()!).ToArray();
            Assert.Equal(tokens, enc.Tokens);
            var (_, ids) = tok.Tokenize(prompt);
            long[] unpadded = [tok.BosId, .. ids.Select(i => (long)i), tok.EosId];
            Assert.Equal(Longs(ftfy, "ids_unpadded"), unpadded);
        }
    }

    private static long[] Longs(JsonElement e, string name) =>
        e.GetProperty(name).EnumerateArray().Select(x => x.GetInt64()).ToArray();

    [Fact]
    public void Long_prompts_are_truncated_to_75_tokens_plus_bos_and_eos()
    {
        var tok = ClipTokenizer.FromFolder(GoldenData.PathOf("tiny_clip_text", "tokenizer"));
        var prompt = string.Join(' ', Enumerable.Repeat("a cat", 60)); // 120 tokens
        var enc = tok.Encode(prompt);
        Assert.Equal(77, enc.InputIds.Length);
        Assert.Equal(120, enc.Tokens.Count);
        Assert.Equal(tok.BosId, enc.InputIds[0]);
        Assert.Equal(tok.EosId, enc.InputIds[76]);
        Assert.All(enc.AttentionMask, m => Assert.Equal(1L, m));
        Assert.Equal(new long[] { 320, 602 }, enc.InputIds[1..3]);
    }

    [Fact]
    public void Special_tokens_in_the_text_are_not_split()
    {
        var tok = ClipTokenizer.FromFolder(GoldenData.PathOf("tiny_clip_text", "tokenizer"));
        var (_, ids) = tok.Tokenize("a<|endoftext|>a !");
        Assert.Equal(new[] { 320, 690, 320, 0 }, ids);
    }

    [Fact]
    public void Missing_vocab_is_a_clear_error()
    {
        var dir = Directory.CreateTempSubdirectory("dloral-tok-").FullName;
        try
        {
            var e = Assert.Throws<FileNotFoundException>(() => ClipTokenizer.FromFolder(dir));
            Assert.Contains("vocab.json", e.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
