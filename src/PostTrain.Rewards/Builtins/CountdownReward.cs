// The Countdown reward: the completion's final answer must be an arithmetic expression (+ - * / and parentheses)
// that uses each of the row's `numbers` exactly once (as a multiset; no other literals) and equals `target` exactly
// (fractions are exact). 1 if so, 0 otherwise, with the reason. The answer is the last \boxed{} or <answer>...</answer>,
// else the last line of the completion; an "= target" suffix is allowed.
using System.Text.RegularExpressions;
using PostTrain.Data.Generators;

namespace PostTrain.Rewards.Builtins;

public sealed partial class CountdownReward : IReward
{
    public const string Description = "1 if the answer expression uses each of `numbers` once and equals `target`, else 0";

    public string Name => "countdown";

    public static CountdownReward FromOptions(RewardOptions o) => new();

    public RewardResult Score(RewardInput input, CancellationToken cancellationToken)
    {
        var targetText = input.Column("target");
        var numbers = Numbers(input.Columns.TryGetValue("numbers", out var n) ? n : null);
        if (targetText is null || numbers is null || !long.TryParse(targetText, out long target))
            return RewardResult.NotApplicable("needs `numbers` and `target` columns");
        var expr = Answer(input.Completion);
        if (expr is null) return new RewardResult(0.0, "no answer");
        int eq = expr.IndexOf('=');
        if (eq >= 0) expr = expr[..eq];
        var used = new List<int>();
        var value = ArithmeticExpression.Evaluate(expr, used);
        if (value is null) return new RewardResult(0.0, $"not an arithmetic expression: {Short(expr)}");
        if (!used.OrderBy(x => x).SequenceEqual(numbers.OrderBy(x => x)))
            return new RewardResult(0.0, $"uses [{string.Join(",", used)}], must use each of [{string.Join(",", numbers)}] once");
        var (num, den) = value.Value;
        return num == target * den ? new RewardResult(1.0, "hits target") : new RewardResult(0.0, $"= {num}/{den}, target {target}");
    }

    private static string? Answer(string completion)
    {
        int box = completion.LastIndexOf("\\boxed{", StringComparison.Ordinal);
        if (box >= 0)
        {
            int depth = 0, start = box + 7;
            for (int i = start; i < completion.Length; i++)
            {
                if (completion[i] == '{') depth++;
                else if (completion[i] == '}' && depth-- == 0) return completion[start..i].Trim();
            }
        }
        var m = AnswerTag().Matches(completion);
        if (m.Count > 0) return m[^1].Groups[1].Value.Trim();
        var lines = completion.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length > 0 ? lines[^1] : null;
    }

    private static List<int>? Numbers(object? v) => v switch
    {
        null => null,
        string s => s.Trim('[', ']', ' ').Split(',', StringSplitOptions.RemoveEmptyEntries).Select(x => int.Parse(x.Trim())).ToList(),
        System.Collections.IEnumerable e => e.Cast<object>().Select(x => Convert.ToInt32(x, System.Globalization.CultureInfo.InvariantCulture)).ToList(),
        _ => null,
    };

    private static string Short(string s) => s.Length <= 40 ? s : s[..40] + "...";

    [GeneratedRegex(@"<answer>(.*?)</answer>", RegexOptions.Singleline)]
    private static partial Regex AnswerTag();
}
