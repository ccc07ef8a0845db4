// maj@k (self-consistency): the answer extracted most often among a problem's k samples wins, and the problem counts
// as solved when that answer's sample is correct. Samples without an extracted answer do not vote; a problem where no
// sample has an answer is unsolved. Ties: among answers with the highest count, the one whose first sample comes
// earliest (lowest sample index) wins, so the result never depends on hash order. Correctness is taken from that
// first sample (samples with equal extracted answers get the same verdict from the math/countdown checkers).
namespace PostTrain.Eval.Metrics;

public static class MajorityVote
{
    /// <summary>One vote: the normalised extracted answer (null = none) and whether that sample was correct.</summary>
    public readonly record struct Vote(string? Answer, bool Correct);

    /// <summary>The winning answer, its count and its correctness; Answer null when no sample had one.</summary>
    public readonly record struct Outcome(string? Answer, int Count, bool Correct);

    public static Outcome Decide(IReadOnlyList<Vote> votes)
    {
        var counts = new Dictionary<string, (int Count, int First)>(StringComparer.Ordinal);
        for (int i = 0; i < votes.Count; i++)
        {
            if (votes[i].Answer is not string a) continue;
            counts[a] = counts.TryGetValue(a, out var e) ? (e.Count + 1, e.First) : (1, i);
        }
        if (counts.Count == 0) return new Outcome(null, 0, false);
        var best = counts.OrderByDescending(kv => kv.Value.Count).ThenBy(kv => kv.Value.First).First();
        return new Outcome(best.Key, best.Value.Count, votes[best.Value.First].Correct);
    }
}
