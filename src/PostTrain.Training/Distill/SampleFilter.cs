// Rejection sampling's checks. Per sample, in this order (a rejected sample is counted under the first it fails):
// teacher_error, too_long (cut off by max_tokens unless reject_truncated is off, or over max_completion_tokens), too_short, missing_answer (the think
// format's reasoning never closed or nothing follows </think>; no \boxed{} when required), wrong (weighted reward
// below min_reward, or no reward applied), repetition (the repetition reward's repeated word n-gram share), mixed
// language (the language reward's share of target-script words in the reasoning). Per problem, over the samples that
// passed: pass_rate (mean reward of all k samples outside [min_pass_rate, max_pass_rate]: the problem is too easy or
// too hard), duplicate (same normalised text as an earlier kept sample), over_max_kept (max_kept_per_problem reached).
using System.Text;
using PostTrain.Rewards;
using PostTrain.Rewards.Builtins;
using PostTrain.Rewards.Math;

namespace PostTrain.Training.Distill;

public static class RejectReason
{
    public const string TeacherError = "teacher_error", TooLong = "too_long", TooShort = "too_short",
        MissingAnswer = "missing_answer", Wrong = "wrong", Repetition = "repetition", MixedLanguage = "mixed_language",
        PassRate = "pass_rate", Duplicate = "duplicate", OverMaxKept = "over_max_kept";

    public static readonly string[] All = [TeacherError, TooLong, TooShort, MissingAnswer, Wrong, Repetition, MixedLanguage, PassRate, Duplicate, OverMaxKept];
}

/// <summary>A sample with its weighted reward (null = no reward applied) as the per-problem step sees it.</summary>
public sealed record ScoredSample(TeacherSample Sample, double? Reward, string? Rejected);

public sealed class SampleFilter
{
    private readonly DistillFilterConfig _cfg;
    private readonly ReasoningTemplate _template;
    private readonly RepetitionReward? _repetition;
    private readonly LanguageReward? _language;

    public SampleFilter(DistillFilterConfig cfg, ReasoningTemplate template)
    {
        (_cfg, _template) = (cfg, template);
        if (cfg.MaxRepetition is not null) _repetition = new RepetitionReward(cfg.RepetitionNgram);
        if (cfg.Language is { } lang) _language = new LanguageReward(lang, scope: "completion");
    }

    /// <summary>The first per-sample check <paramref name="s"/> fails, or null when it passes them all.</summary>
    public string? Check(TeacherSample s, double? reward)
    {
        if (s.Error is not null) return RejectReason.TeacherError;
        if ((s.Truncated && _cfg.RejectTruncated) || (_cfg.MaxCompletionTokens is int max && s.CompletionTokens > max)) return RejectReason.TooLong;
        // token counts can be 0 when an endpoint reports no usage: then only an empty text is too short
        if (string.IsNullOrWhiteSpace(s.Text) || (s.CompletionTokens > 0 && s.CompletionTokens < _cfg.MinCompletionTokens)) return RejectReason.TooShort;
        if (MissingAnswer(s.Text)) return RejectReason.MissingAnswer;
        if (!(reward >= _cfg.MinReward)) return RejectReason.Wrong;
        if (_repetition is not null && RepetitionShare(s.Text) > _cfg.MaxRepetition) return RejectReason.Repetition;
        if (_language is not null && LanguageShare(_template.Reasoning(s.Text)) is double share && share < _cfg.MinLanguageShare)
            return RejectReason.MixedLanguage;
        return null;
    }

    public bool MissingAnswer(string completion)
    {
        var answer = _template.Answer(completion);
        if (string.IsNullOrWhiteSpace(answer)) return true;
        return _cfg.RequireBoxed && MathVerifier.ExtractBoxed(answer) is null;
    }

    /// <summary>1 - unique/total word n-grams (0 with fewer than n words): the repetition reward's measure.</summary>
    public double RepetitionShare(string text)
    {
        var r = (_repetition ?? new RepetitionReward(_cfg.RepetitionNgram)).Score(new RewardInput("", text, RewardInput.NoColumns), CancellationToken.None);
        return r.Metrics is { } m && m.TryGetValue("repeated_ngram_share", out var v) ? v : 0.0;
    }

    /// <summary>Share of target-language words (null = no words with letters, or the filter is off).</summary>
    public double? LanguageShare(string text) =>
        _language?.Score(new RewardInput("", text, RewardInput.NoColumns), CancellationToken.None).Score;

    /// <summary>The per-problem step: which of a problem's samples are kept. Returns each sample's final reason (null = kept).</summary>
    public IReadOnlyList<string?> SelectForProblem(IReadOnlyList<ScoredSample> samples)
    {
        var result = samples.Select(s => s.Rejected).ToArray();
        double mean = samples.Count == 0 ? 0 : samples.Average(s => s.Reward ?? 0.0);
        bool rateOk = mean >= _cfg.MinPassRate && mean <= _cfg.MaxPassRate;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int kept = 0;
        for (int i = 0; i < samples.Count; i++)
        {
            if (result[i] is not null) continue;
            if (!rateOk) result[i] = RejectReason.PassRate;
            else if (_cfg.Dedup && !seen.Add(Normalize(samples[i].Sample.Text))) result[i] = RejectReason.Duplicate;
            else if (kept >= _cfg.MaxKeptPerProblem) result[i] = RejectReason.OverMaxKept;
            else kept++;
        }
        return result;
    }

    /// <summary>Dedup key: lower case, runs of whitespace as one space, trimmed.</summary>
    public static string Normalize(string text)
    {
        var sb = new StringBuilder(text.Length);
        bool space = false;
        foreach (var c in text.Trim())
        {
            if (char.IsWhiteSpace(c)) { space = true; continue; }
            if (space) { sb.Append(' '); space = false; }
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }
}
