// The BPE model of a Hugging Face tokenizer.json: a word (one pre-tokenized piece) starts as one symbol per
// code point and the adjacent pair with the lowest merge rank (leftmost on ties) is merged until no pair
// has a merge, which gives the same result as tokenizers' priority-queue merge loop. Characters missing
// from the vocabulary become unk_token (fused if fuse_unk) or, without unk_token, are dropped, as in
// tokenizers. ignore_merges: a word that is itself in the vocabulary is one token. Results are cached.
using System.Collections.Concurrent;

namespace PostTrain.Data.Tokenizers.Hf;

internal sealed class BpeModel
{
    private const int CacheLimit = 100_000;
    private readonly Dictionary<long, (int Rank, int NewId)> _merges;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    public BpeModel(Dictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges,
        int? unkId, bool fuseUnk, bool ignoreMerges, Func<string, Exception> error)
    {
        Vocab = vocab;
        UnkId = unkId;
        FuseUnk = fuseUnk;
        IgnoreMerges = ignoreMerges;
        _merges = new Dictionary<long, (int, int)>(merges.Count);
        for (var rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = merges[rank];
            if (!vocab.TryGetValue(left, out var a)) throw error($"merge {rank} ('{left} {right}'): '{left}' is not in the vocabulary");
            if (!vocab.TryGetValue(right, out var b)) throw error($"merge {rank} ('{left} {right}'): '{right}' is not in the vocabulary");
            if (!vocab.TryGetValue(left + right, out var merged)) throw error($"merge {rank}: '{left + right}' is not in the vocabulary");
            _merges.TryAdd(Key(a, b), (rank, merged));
        }
    }

    public Dictionary<string, int> Vocab { get; }
    public int? UnkId { get; }
    public bool FuseUnk { get; }
    public bool IgnoreMerges { get; }

    public void Tokenize(string word, List<int> output)
    {
        if (word.Length == 0) return;
        if (IgnoreMerges && Vocab.TryGetValue(word, out var whole))
        {
            output.Add(whole);
            return;
        }
        if (!_cache.TryGetValue(word, out var ids))
        {
            ids = Merge(word);
            if (_cache.Count < CacheLimit) _cache.TryAdd(word, ids);
        }
        output.AddRange(ids);
    }

    private int[] Merge(string word)
    {
        var symbols = new List<int>(word.Length);
        var previousWasUnk = false;
        for (var i = 0; i < word.Length;)
        {
            var length = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            if (Vocab.TryGetValue(word.Substring(i, length), out var id))
            {
                symbols.Add(id);
                previousWasUnk = false;
            }
            else if (UnkId is { } unk)
            {
                if (!(FuseUnk && previousWasUnk)) symbols.Add(unk);
                previousWasUnk = true;
            }
            i += length;
        }

        while (symbols.Count > 1)
        {
            var bestRank = int.MaxValue;
            var bestAt = -1;
            var bestId = 0;
            for (var i = 0; i < symbols.Count - 1; i++)
            {
                if (_merges.TryGetValue(Key(symbols[i], symbols[i + 1]), out var m) && m.Rank < bestRank)
                {
                    bestRank = m.Rank;
                    bestAt = i;
                    bestId = m.NewId;
                }
            }
            if (bestAt < 0) break;
            symbols[bestAt] = bestId;
            symbols.RemoveAt(bestAt + 1);
        }
        return [.. symbols];
    }

    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;
}
