// Byte-level tokenizer for the small built-in models: ids 0..255 are the UTF-8 bytes, then 7 special
// tokens (vocabulary 263): <|pad|> 256, BOS 257, EOS 258, <｜User｜> 259, <｜Assistant｜> 260, <think> 261,
// </think> 262. A special-token string inside the text encodes as its single id (leftmost, longest match).
// Simplification: no merges, so sequences are as long as the UTF-8 text.
using System.Text;

namespace PostTrain.Data.Tokenizers;

public sealed class ByteTokenizer : ITokenizer
{
    public const string PadToken = "<|pad|>";
    public const int FirstSpecialId = 256;

    private static readonly string[] Specials =
    [
        PadToken, DeepSeekTokens.Bos, DeepSeekTokens.Eos, DeepSeekTokens.User, DeepSeekTokens.Assistant,
        DeepSeekTokens.ThinkStart, DeepSeekTokens.ThinkEnd,
    ];

    // Specials by their first char, longest first, for leftmost-longest matching.
    private static readonly Dictionary<char, (string Text, int Id)[]> SpecialsByFirstChar = Specials
        .Select((s, i) => (Text: s, Id: FirstSpecialId + i))
        .GroupBy(s => s.Text[0])
        .ToDictionary(g => g.Key, g => g.OrderByDescending(s => s.Text.Length).ToArray());

    public static ByteTokenizer Instance { get; } = new();

    public int VocabSize => FirstSpecialId + Specials.Length;
    public int PadId => FirstSpecialId;
    public int BosId => FirstSpecialId + 1;
    public int EosId => FirstSpecialId + 2;
    public int UserId => FirstSpecialId + 3;
    public int AssistantId => FirstSpecialId + 4;
    public int ThinkStartId => FirstSpecialId + 5;
    public int ThinkEndId => FirstSpecialId + 6;

    public int[] Encode(string text)
    {
        var ids = new List<int>(text.Length);
        var start = 0; // start of the pending plain-text run
        var i = 0;
        while (i < text.Length)
        {
            var special = MatchSpecial(text, i);
            if (special is null)
            {
                i++;
                continue;
            }
            AddBytes(ids, text.AsSpan(start, i - start));
            ids.Add(special.Value.Id);
            i += special.Value.Text.Length;
            start = i;
        }
        AddBytes(ids, text.AsSpan(start));
        return [.. ids];
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        var sb = new StringBuilder();
        var bytes = new List<byte>();
        foreach (var id in ids)
        {
            if ((uint)id < FirstSpecialId)
            {
                bytes.Add((byte)id);
                continue;
            }
            sb.Append(Encoding.UTF8.GetString([.. bytes]));
            bytes.Clear();
            sb.Append(IdToToken(id) ?? throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} is outside the byte vocabulary (size {VocabSize})"));
        }
        sb.Append(Encoding.UTF8.GetString([.. bytes]));
        return sb.ToString();
    }

    /// <summary>A special token's string, a single ASCII character ("a"), or "&lt;0xNN&gt;" for other bytes.</summary>
    public int? TokenToId(string token)
    {
        var special = Array.IndexOf(Specials, token);
        if (special >= 0) return FirstSpecialId + special;
        if (token.Length == 1 && token[0] < 0x80) return token[0];
        if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
            && byte.TryParse(token.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out var b))
            return b;
        return null;
    }

    public string? IdToToken(int id) => id switch
    {
        >= 0x20 and < 0x7F => ((char)id).ToString(),
        >= 0 and < FirstSpecialId => $"<0x{id:X2}>",
        _ when id >= FirstSpecialId && id < FirstSpecialId + Specials.Length => Specials[id - FirstSpecialId],
        _ => null,
    };

    private static (string Text, int Id)? MatchSpecial(string text, int at)
    {
        if (!SpecialsByFirstChar.TryGetValue(text[at], out var candidates)) return null;
        foreach (var c in candidates)
            if (string.CompareOrdinal(text, at, c.Text, 0, c.Text.Length) == 0) return c;
        return null;
    }

    private static void AddBytes(List<int> ids, ReadOnlySpan<char> text)
    {
        if (text.IsEmpty) return;
        var buffer = new byte[Encoding.UTF8.GetMaxByteCount(text.Length)];
        var n = Encoding.UTF8.GetBytes(text, buffer);
        for (var k = 0; k < n; k++) ids.Add(buffer[k]);
    }
}
