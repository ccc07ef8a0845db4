// What maj@k votes on: a completion's final answer, normalised so equal answers compare equal as strings.
//   math: MathVerifier.ExtractAnswer (last \boxed{}, "the answer is", last number), whitespace removed;
//   countdown: the last \boxed{} or <answer>...</answer>, else the last line, without an "= target" tail or spaces;
//   code: the fenced code block (CodeExtractor) with whitespace runs collapsed;
//   none: no answer (maj@k is not reported).
// Simplification: equivalent but differently written answers (1/2 vs 0.5) are separate votes.
using System.Text.RegularExpressions;
using PostTrain.Rewards.Math;
using PostTrain.Rewards.Sandbox;

namespace PostTrain.Eval.Tasks;

public static partial class AnswerExtraction
{
    public static string? Extract(string kind, string completion, string? codeLanguage = null) => kind switch
    {
        "math" => Squash(MathVerifier.ExtractAnswer(completion)),
        "countdown" => Countdown(completion),
        "code" => CodeExtractor.Extract(completion, codeLanguage ?? "javascript") is string code ? Spaces().Replace(code.Trim(), " ") : null,
        "none" => null,
        _ => throw new EvalConfigException($"unknown answers kind '{kind}' (expected {string.Join(", ", EvalTask.AnswerKinds)})"),
    };

    private static string? Countdown(string completion)
    {
        string? answer = null;
        int box = completion.LastIndexOf("\\boxed{", StringComparison.Ordinal);
        if (box >= 0)
        {
            int depth = 0, start = box + 7;
            for (int i = start; i < completion.Length && answer is null; i++)
            {
                if (completion[i] == '{') depth++;
                else if (completion[i] == '}' && depth-- == 0) answer = completion[start..i];
            }
        }
        if (answer is null)
        {
            var tags = AnswerTag().Matches(completion);
            if (tags.Count > 0) answer = tags[^1].Groups[1].Value;
        }
        answer ??= completion.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
        if (answer is null) return null;
        int eq = answer.IndexOf('=');
        return Squash(eq >= 0 ? answer[..eq] : answer);
    }

    private static string? Squash(string? s) => s is null ? null : Spaces().Replace(s, "") is { Length: > 0 } t ? t : null;

    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();

    [GeneratedRegex(@"<answer>(.*?)</answer>", RegexOptions.Singleline)]
    private static partial Regex AnswerTag();
}
