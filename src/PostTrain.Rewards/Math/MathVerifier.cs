// Public entry points of the math answer checker (the math reward calls these). Verify compares a gold
// answer with a predicted answer; CheckCompletion first extracts the answer from a whole completion.
// Never throws on bad input and never stalls: the whole check runs under one cooperative Budget
// (MathCheckOptions.Timeout) and returns Reason "timeout" or "too complex" when it runs out.
namespace PostTrain.Rewards.Math;

public static class MathVerifier
{
    /// <summary>Is <paramref name="prediction"/> (an answer, possibly in \boxed{}) equivalent to
    /// <paramref name="gold"/> (bare or containing \boxed{})? Asymmetric: see AnswerComparer.</summary>
    public static MathVerdict Verify(string gold, string prediction, MathCheckOptions? options = null)
    {
        options ??= MathCheckOptions.Default;
        return Run(options, budget => Compare(gold, prediction, options, budget), prediction);
    }

    /// <summary>The final answer of a completion (see AnswerExtractor), or null when none is found.</summary>
    public static string? ExtractAnswer(string completion, MathCheckOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(completion);
        options ??= MathCheckOptions.Default;
        try
        {
            return AnswerExtractor.Extract(completion, options, new Budget(options.Timeout));
        }
        catch (MathTimeoutException) { return null; }
    }

    /// <summary>The contents of the text's last \boxed{...} (joined with adjacent boxes; see BoxedExtractor), or null
    /// when it has none.</summary>
    public static string? ExtractBoxed(string text) => BoxedExtractor.Extract(text);

    /// <summary>Extracts the completion's final answer and verifies it against <paramref name="gold"/>.</summary>
    public static MathVerdict CheckCompletion(string gold, string completion, MathCheckOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(completion);
        options ??= MathCheckOptions.Default;
        string? answer = null;
        return Run(options, budget =>
        {
            answer = AnswerExtractor.Extract(completion, options, budget);
            return answer is null ? new MathVerdict(false, null, "no answer found") : Compare(gold, answer, options, budget);
        }, () => answer);
    }

    private static MathVerdict Run(MathCheckOptions options, Func<Budget, MathVerdict> check, string extracted) =>
        Run(options, check, () => extracted);

    private static MathVerdict Run(MathCheckOptions options, Func<Budget, MathVerdict> check, Func<string?> extractedSoFar)
    {
        try
        {
            return check(new Budget(options.Timeout));
        }
        catch (MathTimeoutException) { return new MathVerdict(false, extractedSoFar(), "timeout"); }
        catch (MathTooComplexException e) { return new MathVerdict(false, extractedSoFar(), "too complex: " + e.Message); }
        catch (InsufficientExecutionStackException) { return new MathVerdict(false, extractedSoFar(), "too complex: nesting"); }
        catch (OverflowException) { return new MathVerdict(false, extractedSoFar(), "too complex: overflow"); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // a reward must not crash a training step on one odd completion; the reason names the failure
            return new MathVerdict(false, extractedSoFar(), "error: " + e.GetType().Name);
        }
    }

    private static MathVerdict Compare(string gold, string prediction, MathCheckOptions options, Budget budget)
    {
        ArgumentNullException.ThrowIfNull(gold);
        ArgumentNullException.ThrowIfNull(prediction);
        if (prediction.Trim().Length == 0) return new MathVerdict(false, prediction, "no answer found");
        var g = AnswerParser.Parse(gold, options, budget, extractIfNeeded: true);
        var p = AnswerParser.Parse(prediction, options, budget, extractIfNeeded: true);
        if (g.Readings.Count == 0 || p.Readings.Count == 0)
        {
            // unparseable on one side: only an identical cleaned string counts (as math-verify's string fallback)
            var same = g.Cleaned.Length > 0 && string.Equals(g.Cleaned, p.Cleaned, StringComparison.Ordinal);
            var why = g.Readings.Count == 0 ? "unparsed gold" : "unparsed answer";
            return new MathVerdict(same, prediction, same ? "equal (string)" : $"{why}: {Short(g.Cleaned)} vs {Short(p.Cleaned)}");
        }
        var comparer = new AnswerComparer(options, budget);
        var outcome = Outcome.NotEqual;
        foreach (var gr in g.Readings)
        {
            foreach (var pr in p.Readings)
            {
                outcome = outcome.Or(comparer.Compare(gr, pr));
                if (outcome == Outcome.Equal) return new MathVerdict(true, prediction, "equal");
            }
        }
        return outcome == Outcome.TooComplex
            ? new MathVerdict(false, prediction, "too complex")
            : new MathVerdict(false, prediction, $"not equal: {Short(g.Cleaned)} vs {Short(p.Cleaned)}");
    }

    private static string Short(string s) => s.Length <= 60 ? s : s[..57] + "...";
}
