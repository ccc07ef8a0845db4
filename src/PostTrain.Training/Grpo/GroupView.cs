// What every rank knows about every group of a GRPO step's global batch (data parallel: each rank samples and scores
// the groups of its contiguous share of the step's prompts, then the ranks exchange these views). A view holds what
// the step's decisions and metrics read (rewards, reward calls, lengths, texts for the sample log), in the global
// order, so advantages (batch std included), dynamic sampling's choice of groups, rollout metrics and sample logs equal
// one process's. Token ids and log-probs stay on the rank that sampled them (Local, null elsewhere).
using System.Text.Json.Serialization;
using PostTrain.Rewards;
using PostTrain.Training.Distributed;

namespace PostTrain.Training.Grpo;

public sealed record CompletionView(string Text, double Reward, IReadOnlyList<RewardCall> Calls, string FinishReason, int Tokens, bool Truncated);

public sealed record GroupView(string Prompt, IReadOnlyList<CompletionView> Completions)
{
    /// <summary>The group itself on the rank that sampled it; null on the others.</summary>
    [JsonIgnore] public RolloutGroup? Local { get; init; }

    [JsonIgnore] public IReadOnlyList<double> Rewards => Completions.Select(c => c.Reward).ToList();

    /// <summary>The global batch's views, in prompt order, from this rank's round (prompts [first, first + count) of the
    /// batch). Collective.</summary>
    public static IReadOnlyList<GroupView> Gather(DataParallel dp, RolloutRound local, int first)
    {
        var mine = local.Groups.Select((g, p) => new GroupView(g.Prompt.Text, g.Completions.Select((c, j) =>
            new CompletionView(c.Text, c.Reward, local.Scores.Calls[p * g.Completions.Count + j], c.FinishReason, c.TokenIds.Length, c.Truncated)).ToList())).ToList();
        var all = dp.Gather(mine).ToList();
        for (int p = 0; p < local.Groups.Count; p++) all[first + p] = all[first + p] with { Local = local.Groups[p] };
        return all;
    }

    /// <summary>The reward result of every completion of these groups (what RewardRunner returns for them in one batch).</summary>
    public static RewardBatchResult Scores(IReadOnlyList<GroupView> groups, IReadOnlyList<string> names, IReadOnlyList<double> weights) =>
        RewardBatchResult.FromCalls(names, weights, groups.SelectMany(g => g.Completions.Select(c => c.Calls)).ToList());
}
