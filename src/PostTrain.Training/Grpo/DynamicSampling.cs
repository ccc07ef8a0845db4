// DAPO dynamic sampling: a group whose completions all got the same reward has zero advantage everywhere and teaches
// nothing (only the KL term moves), so it is dropped and more prompts are sampled until the batch holds the wanted
// number of informative groups, for at most max_rounds sampling rounds. If the limit is reached first, the batch is
// trained with the informative groups found (fewer than wanted); if there are none at all, with the last round's
// groups as they are (their gradient is the KL term alone).
namespace PostTrain.Training.Grpo;

public static class DynamicSampling
{
    /// <summary>True when the group's rewards are not all equal (its advantages are not all zero).</summary>
    public static bool IsInformative(IReadOnlyList<double> groupRewards)
    {
        for (int i = 1; i < groupRewards.Count; i++)
            if (groupRewards[i] != groupRewards[0]) return true;
        return false;
    }

    /// <summary>Rounds of <paramref name="sampleRound"/>(round) until <paramref name="wanted"/> informative groups are
    /// kept or <paramref name="maxRounds"/> rounds ran. Returns the groups to train on and the rounds used.</summary>
    public static (IReadOnlyList<T> Groups, int Rounds) Collect<T>(Func<int, IReadOnlyList<T>> sampleRound,
        Func<T, bool> informative, int wanted, int maxRounds)
    {
        if (wanted < 1) throw new ArgumentOutOfRangeException(nameof(wanted), wanted, "must be >= 1");
        if (maxRounds < 1) throw new ArgumentOutOfRangeException(nameof(maxRounds), maxRounds, "must be >= 1");
        var kept = new List<T>();
        IReadOnlyList<T> last = [];
        int round = 0;
        while (kept.Count < wanted && round < maxRounds)
        {
            last = sampleRound(round++);
            kept.AddRange(last.Where(informative).Take(wanted - kept.Count));
        }
        return (kept.Count > 0 ? kept : last, round);
    }
}
