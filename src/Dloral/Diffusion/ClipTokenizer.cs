using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using static TorchSharp.torch;

namespace Dloral.Diffusion;

/// <summary>The ids and attention mask of one encoded prompt.</summary>
/// <param name="InputIds">BOS, the (truncated) token ids, EOS, then pad ids up to the max length.</param>
/// <param name="AttentionMask">1 for BOS/tokens/EOS, 0 for padding.</param>
/// <param name="Tokens">The BPE tokens of the prompt, without BOS/EOS/padding and before truncation.</param>
public sealed record ClipEncoding(long[] InputIds, long[] AttentionMask, IReadOnlyList<string> Tokens);

/// <summary>
/// The CLIP BPE tokenizer as transformers 4.28's <c>CLIPTokenizer</c> runs it in DLoRAL's
/// environment (the "ftfy" path with an identity <c>fix_text</c>): special tokens are split out of
/// the raw text first (SD 2.x's pad token <c>"!"</c> is one, so a literal "!" becomes id 0), each
/// remaining chunk is whitespace-cleaned and lower-cased, split by CLIP's regex, mapped to
/// byte-level characters and BPE-merged with a <c>&lt;/w&gt;</c> end-of-word suffix. The BPE merge
/// itself is Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/> run on one pre-split word at a time.
/// </summary>
public sealed class ClipTokenizer
{
    // transformers CLIPTokenizer.pat (compiled with re.IGNORECASE there).
    private static readonly Regex WordPattern = new(
        @"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.Compiled);

    private static readonly Regex Whitespace = new(@"\s+", RegexOptions.CultureInvariant | RegexOptions.Compiled);

    private readonly BpeTokenizer _bpe;
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, (int[] Ids, string[] Tokens)> _wordCache = new(StringComparer.Ordinal);
    private readonly string[] _specialTokens; // longest first, for greedy no-split matching
    private readonly object _lock = new();

    public string BosToken { get; }
    public string EosToken { get; }
    public string PadToken { get; }
    public string UnkToken { get; }
    public int BosId { get; }
    public int EosId { get; }
    public int PadId { get; }
    public int UnkId { get; }
    /// <summary>tokenizer_config.json <c>model_max_length</c> (77 for CLIP).</summary>
    public int ModelMaxLength { get; }
    public int VocabSize => _vocab.Count;

    private ClipTokenizer(BpeTokenizer bpe, Dictionary<string, int> vocab, string bos, string eos, string pad, string unk, int maxLength, string source)
    {
        _bpe = bpe;
        _vocab = vocab;
        BosToken = bos;
        EosToken = eos;
        PadToken = pad;
        UnkToken = unk;
        int Id(string token, string role) => vocab.TryGetValue(token, out var id)
            ? id
            : throw new InvalidDataException($"{source}: the {role} token '{token}' is not in vocab.json");
        BosId = Id(bos, "bos");
        EosId = Id(eos, "eos");
        PadId = Id(pad, "pad");
        UnkId = Id(unk, "unk");
        ModelMaxLength = maxLength;
        _specialTokens = new[] { bos, eos, pad, unk }.Distinct().OrderByDescending(s => s.Length).ToArray();
    }

    /// <summary>
    /// Loads a Hugging Face tokenizer folder: vocab.json, merges.txt and (optional)
    /// tokenizer_config.json / special_tokens_map.json for the pad token and model_max_length.
    /// Defaults are CLIP's (pad = <c>&lt;|endoftext|&gt;</c> as in SD 1.x, max length 77).
    /// </summary>
    public static ClipTokenizer FromFolder(string folder)
    {
        var vocabPath = Path.Combine(folder, "vocab.json");
        var mergesPath = Path.Combine(folder, "merges.txt");
        foreach (var p in new[] { vocabPath, mergesPath })
            if (!File.Exists(p))
                throw new FileNotFoundException($"tokenizer file missing: {p}", p);

        Dictionary<string, int> vocab;
        try
        {
            vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(vocabPath))
                ?? throw new InvalidDataException("vocab.json is null");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{vocabPath}: not a JSON object of token → id: {e.Message}", e);
        }

        string bos = "<|startoftext|>", eos = "<|endoftext|>", unk = "<|endoftext|>";
        string? pad = null;
        var maxLength = 77;
        // special_tokens_map.json first, tokenizer_config.json overrides (what from_pretrained ends up with).
        foreach (var name in new[] { "special_tokens_map.json", "tokenizer_config.json" })
        {
            var path = Path.Combine(folder, name);
            if (!File.Exists(path))
                continue;
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(path));
                var root = doc.RootElement;
                bos = TokenContent(root, "bos_token") ?? bos;
                eos = TokenContent(root, "eos_token") ?? eos;
                unk = TokenContent(root, "unk_token") ?? unk;
                pad = TokenContent(root, "pad_token") ?? pad;
                // transformers uses a huge sentinel when unset; keep 77 then.
                if (root.TryGetProperty("model_max_length", out var ml) && ml.ValueKind == JsonValueKind.Number
                    && ml.TryGetInt64(out var m) && m > 2 && m < 1_000_000)
                    maxLength = (int)m;
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{path}: invalid JSON: {e.Message}", e);
            }
        }

        BpeTokenizer bpe;
        try
        {
            bpe = BpeTokenizer.Create(new BpeOptions(vocabPath, mergesPath)
            {
                ByteLevel = true,
                EndOfWordSuffix = "</w>",
                UnknownToken = unk,
                PreTokenizer = null,
                Normalizer = null,
            });
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"{folder}: cannot build the BPE from vocab.json + merges.txt: {e.Message}", e);
        }
        return new ClipTokenizer(bpe, vocab, bos, eos, pad ?? eos, unk, maxLength, folder);
    }

    // A special token is either a plain string or an AddedToken object {"content": ...}.
    private static string? TokenContent(JsonElement root, string key)
    {
        if (!root.TryGetProperty(key, out var v))
            return null;
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
            _ => null,
        };
    }

    /// <summary>The BPE tokens and ids of <paramref name="text"/>, without BOS/EOS, not truncated.</summary>
    public (IReadOnlyList<string> Tokens, IReadOnlyList<int> Ids) Tokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var tokens = new List<string>();
        var ids = new List<int>();
        foreach (var (chunk, isSpecial) in SplitOnSpecialTokens(text))
        {
            if (isSpecial)
            {
                tokens.Add(chunk);
                ids.Add(_vocab[chunk]);
                continue;
            }
            // ftfy path: whitespace_clean(fix_text(text)).lower(), fix_text being the identity here.
            var clean = Whitespace.Replace(chunk, " ").Trim().ToLowerInvariant();
            foreach (Match m in WordPattern.Matches(clean))
            {
                var (wIds, wTokens) = EncodeWord(m.Value);
                ids.AddRange(wIds);
                tokens.AddRange(wTokens);
            }
        }
        return (tokens, ids);
    }

    // transformers' tokens_trie.split: special tokens are never split and never cleaned.
    private IEnumerable<(string Chunk, bool IsSpecial)> SplitOnSpecialTokens(string text)
    {
        var start = 0;
        var i = 0;
        while (i < text.Length)
        {
            string? hit = null;
            foreach (var s in _specialTokens)
                if (i + s.Length <= text.Length && string.CompareOrdinal(text, i, s, 0, s.Length) == 0)
                {
                    hit = s;
                    break;
                }
            if (hit is null)
            {
                i++;
                continue;
            }
            if (i > start)
                yield return (text[start..i], false);
            yield return (hit, true);
            i += hit.Length;
            start = i;
        }
        if (start < text.Length)
            yield return (text[start..], false);
    }

    private (int[] Ids, string[] Tokens) EncodeWord(string word)
    {
        lock (_lock)
        {
            if (_wordCache.TryGetValue(word, out var cached))
                return cached;
        }
        // CLIP's regex also matches the two special tokens; they map to their own ids unsplit.
        (int[] Ids, string[] Tokens) result;
        if (_vocab.TryGetValue(word, out var specialId) && (word == BosToken || word == EosToken))
            result = ([specialId], [word]);
        else
        {
            var encoded = _bpe.EncodeToTokens(word, out _, considerPreTokenization: false, considerNormalization: false);
            result = (encoded.Select(t => t.Id).ToArray(), encoded.Select(t => t.Value).ToArray());
        }
        lock (_lock)
        {
            if (_wordCache.Count < 100_000)
                _wordCache[word] = result;
        }
        return result;
    }

    /// <summary>
    /// <c>tokenizer(text, max_length, padding="max_length", truncation=True)</c>: BOS + at most
    /// maxLength − 2 token ids + EOS, padded with the pad id to maxLength (default model_max_length).
    /// </summary>
    public ClipEncoding Encode(string text, int? maxLength = null)
    {
        var length = maxLength ?? ModelMaxLength;
        if (length < 2)
            throw new ArgumentOutOfRangeException(nameof(maxLength), length, "max length must leave room for BOS and EOS");
        var (tokens, ids) = Tokenize(text);
        var keep = Math.Min(ids.Count, length - 2);
        var inputIds = new long[length];
        var mask = new long[length];
        inputIds[0] = BosId;
        for (var i = 0; i < keep; i++)
            inputIds[1 + i] = ids[i];
        inputIds[1 + keep] = EosId;
        for (var i = 0; i < keep + 2; i++)
            mask[i] = 1;
        for (var i = keep + 2; i < length; i++)
            inputIds[i] = PadId;
        return new ClipEncoding(inputIds, mask, tokens);
    }

    /// <summary>The padded input ids of several prompts as an int64 tensor [B, maxLength] on the CPU.</summary>
    public Tensor EncodeToTensor(IReadOnlyList<string> texts, int? maxLength = null)
    {
        var length = maxLength ?? ModelMaxLength;
        var data = new long[texts.Count * length];
        for (var b = 0; b < texts.Count; b++)
            Encode(texts[b], length).InputIds.CopyTo(data, b * length);
        return tensor(data, [texts.Count, length], dtype: ScalarType.Int64);
    }
}
