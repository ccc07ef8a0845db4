// DeepSeek-R1's language-consistency reward: the share of target-language words in the reasoning.
// A "word" is a run of letters/digits (each Han or kana character is a word by itself); words without letters
// (numbers) are ignored; a word counts as target-language when all its letters are in the target's script
// (en and other Latin-script languages: Latin letters; zh: Han; ja: Han or kana; ko: Hangul; ru: Cyrillic; ...).
// Simplification: scripts, not languages — French text passes an "en" target. Scope: "reasoning" (default; the text
// inside <think>...</think>, or the whole completion when it has no think tags), "answer" or "completion".
// Not applicable (null) when the text has no word with letters.
namespace PostTrain.Rewards.Builtins;

public sealed class LanguageReward : IReward
{
    public const string Description = "share of target-language words in the reasoning (R1 language consistency; en = Latin, zh = CJK)";

    private readonly string _target;
    private readonly HashSet<string> _scripts;
    private readonly string _scope;
    private readonly string _open;
    private readonly string _close;

    public LanguageReward(string target = "en", string scope = "reasoning", string thinkOpen = "<think>", string thinkClose = "</think>")
    {
        if (!Scripts.Targets.TryGetValue(target, out var scripts))
            throw new RewardConfigException($"reward 'language': unknown target '{target}'"
                + (NameSuggester.Closest(target, Scripts.Targets.Keys) is { } h ? $"; did you mean '{h}'?" : "")
                + $" (known: {string.Join(", ", Scripts.Targets.Keys.Order())})");
        if (!CompletionParts.Scopes.Contains(scope))
            throw new RewardConfigException($"reward 'language': option 'scope' must be one of {string.Join(", ", CompletionParts.Scopes)} (got '{scope}')");
        (_target, _scripts, _scope, _open, _close) = (target, [.. scripts], scope, thinkOpen, thinkClose);
    }

    public string Name => "language";

    public static LanguageReward FromOptions(RewardOptions o) => new(o.String("target", "en"), o.String("scope", "reasoning"),
        o.String("think_open", "<think>"), o.String("think_close", "</think>"));

    public RewardResult Score(RewardInput input, CancellationToken cancellationToken)
    {
        var text = CompletionParts.Select(input, _scope, _open, _close) ?? input.Completion;
        var words = Scripts.LetterWords(text);
        if (words.Count == 0) return RewardResult.NotApplicable("no words with letters");
        var target = words.Count(w => w.IsSubsetOf(_scripts));
        var metrics = new Dictionary<string, double> { ["words"] = words.Count };
        return new RewardResult((double)target / words.Count, $"{target}/{words.Count} words in '{_target}'", metrics);
    }
}
