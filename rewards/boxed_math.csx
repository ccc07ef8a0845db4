// Boxed-answer math reward: 1 when the last \boxed{...} of the answer equals the `answer` column (as text or as a number), else 0.
//
// THE C# SCRIPT PLUGIN CONTRACT (compiled with Roslyn when the reward is loaded):
//   * The script's LAST EXPRESSION is the reward function, a Func<RewardSample, RewardOutput>: a lambda
//     (s => ...) or, as here, the name of a method the script declares.
//   * RewardSample: Prompt, Completion, Columns, Column("name") (text or null), Reasoning (inside <think>...</think>)
//     and Answer (after </think>, or the whole completion).
//   * RewardOutput: return a number (converts implicitly), RewardOutput.Skip("why") for not applicable, or
//     new RewardOutput(score, reason, metrics).
//   * The top level runs once at load; Options holds the recipe's `options:` and Option(key, fallback) reads one.
//     The function is then called from several threads at once: do not mutate shared state in it.
//   * Allowed APIs: System (not Environment, Console, GC, Type, AppDomain, Activator), collections, LINQ, text,
//     regular expressions, globalization, numerics, Tasks. No files, network, processes, reflection, threads,
//     unsafe code, #r or #load: the plugin is rejected at load with the file, line and symbol.
// The first line (a // comment) is the description `posttrain reward ls` shows; the name is the file name
// ("boxed_math"). Compile errors and exceptions are reported with this file's name and line.
//
// Comparison here is deliberately simple: exact text after removing spaces and surrounding $, or equal numbers
// (integers, decimals, "1,000", a/b and \frac{a}{b}) within a relative tolerance. The built-in `math` reward does
// full answer checking (sets, intervals, symbolic equivalence).

var tolerance = Option("tolerance", 1e-9);

// The content of the last \boxed{...}, braces balanced; null when there is none.
string? LastBoxed(string text)
{
    var start = text.LastIndexOf("\\boxed{", StringComparison.Ordinal);
    if (start < 0) return null;
    var depth = 0;
    for (var i = start + "\\boxed".Length; i < text.Length; i++)
    {
        if (text[i] == '{') depth++;
        else if (text[i] == '}' && --depth == 0) return text.Substring(start + "\\boxed{".Length, i - start - "\\boxed{".Length);
    }
    return null; // unbalanced
}

string Normalize(string s) => s.Replace(" ", "").Trim('$');

// The value of a plain number, thousands-separated number, a/b or \frac{a}{b}; null otherwise.
double? Number(string s)
{
    s = Normalize(s).Replace("\\dfrac", "\\frac").Replace("\\tfrac", "\\frac");
    var frac = Regex.Match(s, @"^(-?)\\frac\{(-?[0-9.]+)\}\{(-?[0-9.]+)\}$");
    if (frac.Success) s = frac.Groups[1].Value + frac.Groups[2].Value + "/" + frac.Groups[3].Value;
    var parts = s.Split('/');
    if (parts.Length == 2 && Plain(parts[0]) is double n && Plain(parts[1]) is double d && d != 0) return n / d;
    return parts.Length == 1 ? Plain(s) : null;
}

double? Plain(string s) =>
    Regex.IsMatch(s, @"^-?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?$|^-?[0-9]*\.?[0-9]+$")
        ? double.Parse(s.Replace(",", ""), CultureInfo.InvariantCulture)
        : null;

RewardOutput Score(RewardSample sample)
{
    var gold = sample.Column("answer");
    if (gold is null) return RewardOutput.Skip("no 'answer' column");
    var boxed = LastBoxed(sample.Answer);
    if (boxed is null) return new RewardOutput(0.0, "no \\boxed{} in the answer");
    var same = Normalize(boxed) == Normalize(gold)
        || (Number(boxed) is double a && Number(gold) is double b && Math.Abs(a - b) <= tolerance * Math.Max(1.0, Math.Abs(b)));
    return new RewardOutput(same ? 1.0 : 0.0, same ? "correct" : $"boxed '{boxed}' vs answer '{gold}'");
}

Score
