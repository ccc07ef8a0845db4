// A Hugging Face byte-level BPE tokenizer (tokenizer.json, the format of DeepSeek-V3, Qwen, Llama 3, GPT-2),
// encoding exactly as the `tokenizers` library with add_special_tokens=False: added tokens split out first,
// then normalizer, pre-tokenizer (Sequence / Split / ByteLevel / Digits) and the BPE model per piece.
// Decoding follows the ByteLevel decoder. Written here rather than on Microsoft.ML.Tokenizers because its
// RegexPreTokenizer drops the text between matches (HF's "Isolated" keeps it) and its regexes see UTF-16
// surrogates rather than code points; see CodePointRegex. Not supported (load fails with the key named):
// non-BPE models, dropout, byte_fallback, subword prefixes/suffixes, normalizers other than NF*, other
// pre-tokenizers and decoders. The post-processor (BOS insertion) is ignored: chat templates add BOS.
using System.Text;

namespace PostTrain.Data.Tokenizers.Hf;

public sealed class HfBpeTokenizer : ITokenizer
{
    private readonly AddedVocabulary _added;
    private readonly IPreTokenizerStep? _preTokenizer;
    private readonly BpeModel _model;
    private readonly string?[] _idToToken;
    private readonly Dictionary<string, int> _addedByContent;

    internal HfBpeTokenizer(string source, AddedVocabulary added, IPreTokenizerStep? preTokenizer, BpeModel model,
        SpecialTokenNames names)
    {
        Source = source;
        _added = added;
        _preTokenizer = preTokenizer;
        _model = model;
        _addedByContent = added.Tokens.GroupBy(t => t.Content).ToDictionary(g => g.Key, g => g.Last().Id, StringComparer.Ordinal);

        var size = Math.Max(model.Vocab.Count == 0 ? 0 : model.Vocab.Values.Max() + 1,
            added.Tokens.Count == 0 ? 0 : added.Tokens.Max(t => t.Id) + 1);
        _idToToken = new string?[size];
        foreach (var (token, id) in model.Vocab) _idToToken[id] = token;
        foreach (var t in added.Tokens) _idToToken[t.Id] = t.Content;

        BosId = TokenToId(names.Bos) ?? throw new DataException(source, null, "bos_token", $"BOS token '{names.Bos}' is not in the vocabulary");
        EosId = TokenToId(names.Eos) ?? throw new DataException(source, null, "eos_token", $"EOS token '{names.Eos}' is not in the vocabulary");
        PadId = (names.Pad is null ? null : TokenToId(names.Pad)) ?? EosId;
    }

    /// <summary>The file the tokenizer was loaded from.</summary>
    public string Source { get; }

    public int VocabSize => _idToToken.Length;
    public int BosId { get; }
    public int EosId { get; }
    public int PadId { get; }

    /// <summary>Loads tokenizer.json (a file, or a directory holding one). BOS/EOS/pad come from
    /// <paramref name="names"/>, else from tokenizer_config.json beside it, else DeepSeek-V3's names.</summary>
    public static HfBpeTokenizer Load(string path, SpecialTokenNames? names = null)
    {
        var file = Directory.Exists(path) ? Path.Combine(path, "tokenizer.json") : path;
        if (!File.Exists(file)) throw new DataException(file, null, null, "tokenizer.json not found");
        names ??= HfTokenizerConfig.ReadSpecialTokenNames(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, "tokenizer_config.json"))
            ?? SpecialTokenNames.DeepSeek;
        return HfTokenizerJson.Parse(File.ReadAllText(file), file, names);
    }

    /// <summary>Parses the text of a tokenizer.json; <paramref name="source"/> names it in errors.</summary>
    public static HfBpeTokenizer FromJson(string json, string source, SpecialTokenNames? names = null) =>
        HfTokenizerJson.Parse(json, source, names ?? SpecialTokenNames.DeepSeek);

    public int[] Encode(string text)
    {
        var ids = new List<int>();
        var words = new List<string>();
        foreach (var piece in _added.Split(text))
        {
            if (piece.IsToken)
            {
                ids.Add(piece.TokenId);
                continue;
            }
            words.Clear();
            if (_preTokenizer is null) words.Add(piece.Text);
            else _preTokenizer.Split(piece.Text, words);
            foreach (var word in words) _model.Tokenize(word, ids);
        }
        return [.. ids];
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        var bytes = new List<byte>();
        foreach (var id in ids)
        {
            var token = IdToToken(id) ?? throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} is not in the vocabulary of {Source}");
            // ByteLevel decoder: a token made only of byte-level chars gives those bytes, any other its UTF-8.
            var start = bytes.Count;
            var allMapped = true;
            foreach (var c in token)
            {
                if (!ByteLevelAlphabet.CharToByte.TryGetValue(c, out var b))
                {
                    allMapped = false;
                    break;
                }
                bytes.Add(b);
            }
            if (allMapped) continue;
            bytes.RemoveRange(start, bytes.Count - start);
            bytes.AddRange(Encoding.UTF8.GetBytes(token));
        }
        return Encoding.UTF8.GetString([.. bytes]);
    }

    public int? TokenToId(string token) =>
        _addedByContent.TryGetValue(token, out var id) ? id : _model.Vocab.TryGetValue(token, out id) ? id : null;

    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;
}
