// open-r1's tag_count_reward: partial credit for each format tag that occurs exactly once. With the default four tags
// ("<think>\n", "\n</think>\n", "\n<answer>\n", "\n</answer>", newlines included as in open-r1) each is worth 0.25;
// with n configured tags each is worth 1/n.
namespace PostTrain.Rewards.Builtins;

public sealed class TagCountReward : IReward
{
    public const string Description = "partial credit 1/n for each format tag occurring exactly once (open-r1 tag_count, 0.25 per tag)";
    public static readonly string[] DefaultTags = ["<think>\n", "\n</think>\n", "\n<answer>\n", "\n</answer>"];

    private readonly IReadOnlyList<string> _tags;

    public TagCountReward(IReadOnlyList<string>? tags = null)
    {
        _tags = tags ?? DefaultTags;
        if (_tags.Count == 0 || _tags.Any(t => t.Length == 0))
            throw new RewardConfigException("reward 'tag_count': tags must be a non-empty list of non-empty strings");
    }

    public string Name => "tag_count";

    public static TagCountReward FromOptions(RewardOptions o) => new(o.StringList("tags"));

    public RewardResult Score(RewardInput input, CancellationToken cancellationToken)
    {
        var once = _tags.Count(t => TextCount.Occurrences(input.Completion, t) == 1);
        return new RewardResult((double)once / _tags.Count, $"{once}/{_tags.Count} tags occur exactly once");
    }
}
