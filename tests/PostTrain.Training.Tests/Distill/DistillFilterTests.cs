// The distill recipe's filters on hand-made samples: each per-sample check and its order, the per-problem keep rules
// (pass-rate band, dedup, max kept), n-gram decontamination, the reasoning template and the backoff schedule. The
// expected numbers are counted by hand in the comments.
using PostTrain.Training.Distill;
using PostTrain.Training.Recipes;

namespace PostTrain.Training.Tests.Distill;

public sealed class DistillFilterTests
{
    private static readonly ReasoningTemplate Think = new(ReasoningFormat.Think, null, "{prompt}");
    private static readonly ReasoningTemplate Plain = new(ReasoningFormat.None, null, "{prompt}");

    private static TeacherSample S(string text, int tokens = 20, string finish = "stop", string? error = null) => new(text, 10, tokens, finish, error);

    [Fact]
    public void Each_per_sample_check_rejects_its_case_and_counts_the_first_failure()
    {
        var f = new SampleFilter(new DistillFilterConfig { MinReward = 1.0, MinCompletionTokens = 5, MaxCompletionTokens = 50, RequireBoxed = true }, Think);
        const string good = "<think>two plus two is four</think> The answer is \\boxed{4}.";

        Assert.Null(f.Check(S(good), 1.0));
        Assert.Equal(RejectReason.TeacherError, f.Check(S("", 0, "error", "HTTP 400: too long"), null));
        Assert.Equal(RejectReason.TooLong, f.Check(S(good, finish: "length"), 1.0));     // cut off by max_tokens
        Assert.Equal(RejectReason.TooLong, f.Check(S(good, tokens: 51), 1.0));           // over max_completion_tokens
        Assert.Null(f.Check(S(good, tokens: 50), 1.0));
        Assert.Equal(RejectReason.TooShort, f.Check(S(good, tokens: 4), 1.0));
        Assert.Equal(RejectReason.TooShort, f.Check(S("   ", tokens: 0), 1.0));
        Assert.Null(f.Check(S(good, tokens: 0), 1.0));                                  // no usage reported: the text decides
        Assert.Equal(RejectReason.MissingAnswer, f.Check(S("<think>still thinking \\boxed{4}"), 1.0));   // never closed
        Assert.Equal(RejectReason.MissingAnswer, f.Check(S("<think>so it is \\boxed{4}</think>   "), 1.0)); // nothing after </think>
        Assert.Equal(RejectReason.MissingAnswer, f.Check(S("<think>two plus two</think> The answer is 4."), 1.0)); // no box
        Assert.Equal(RejectReason.Wrong, f.Check(S(good), 0.0));
        Assert.Equal(RejectReason.Wrong, f.Check(S(good), null));                        // no reward applied
        Assert.Equal(RejectReason.Wrong, f.Check(S(good), 0.999));
        // order: a truncated sample with a wrong answer is too_long, not wrong
        Assert.Equal(RejectReason.TooLong, f.Check(S(good, finish: "length"), 0.0));
    }

    [Fact]
    public void Repetition_uses_the_repetition_rewards_share_of_repeated_word_ngrams()
    {
        var f = new SampleFilter(new DistillFilterConfig { MaxRepetition = 0.5, RepetitionNgram = 3, Language = null }, Plain);
        // 9 words -> 7 trigrams, 3 distinct ("a b c", "b c a", "c a b"): share 1 - 3/7 = 0.5714 > 0.5
        const string loop = "a b c a b c a b c \\boxed{1}";
        Assert.Equal(1 - 4.0 / 8, f.RepetitionShare("a b c a b c a b c \\boxed{1}"), 12);  // with the box word: 10 words, 8 trigrams, 4 distinct
        Assert.Equal(1 - 3.0 / 7, f.RepetitionShare("A b C a B c a b c"), 12);           // lower-cased before counting
        Assert.Equal(0.0, f.RepetitionShare("one two"));                                 // fewer words than n
        Assert.Null(f.Check(S(loop), 1.0));                                              // 0.5 is not above 0.5
        Assert.Equal(RejectReason.Repetition, f.Check(S("a b c a b c a b c"), 1.0));
        Assert.Null(f.Check(S("first we add the two numbers to get \\boxed{4}"), 1.0));
    }

    [Fact]
    public void Mixed_language_reads_the_reasoning_with_the_language_rewards_scripts()
    {
        var f = new SampleFilter(new DistillFilterConfig { Language = "en", MinLanguageShare = 0.75, MaxRepetition = null }, Think);
        // reasoning words: "the", "sum", "равна", "four" -> 3 of 4 Latin = 0.75 (numbers ignored): kept at 0.75
        Assert.Equal(0.75, f.LanguageShare("the sum 2 равна four"));
        Assert.Null(f.Check(S("<think>the sum 2 равна four</think> \\boxed{4}"), 1.0));
        // "сумма равна four": 1 of 3 Latin = 0.33
        Assert.Equal(RejectReason.MixedLanguage, f.Check(S("<think>сумма равна four</think> \\boxed{4}"), 1.0));
        // the answer after </think> is not the reasoning: Cyrillic there does not count
        Assert.Null(f.Check(S("<think>the sum is four</think> ответ \\boxed{4}"), 1.0));
        // no words with letters at all: nothing to judge, kept
        Assert.Null(f.Check(S("<think>2 + 2 = 4</think> \\boxed{4}"), 1.0));
    }

    private static List<ScoredSample> Problem(SampleFilter f, params (string Text, double Reward)[] samples) =>
        samples.Select(s => new ScoredSample(S(s.Text), s.Reward, f.Check(S(s.Text), s.Reward))).ToList();

    [Fact]
    public void Duplicates_are_dropped_by_normalised_text_and_at_most_max_kept_remain()
    {
        var f = new SampleFilter(new DistillFilterConfig { MaxKeptPerProblem = 2, Language = null, MaxRepetition = null }, Plain);
        var verdicts = f.SelectForProblem(Problem(f,
            ("The answer is \\boxed{4}.", 1),
            ("the  answer is\n\\boxed{4}.  ", 1),    // same text up to case and spacing
            ("2 + 2 = 4. The answer is \\boxed{4}.", 1),
            ("The answer is \\boxed{5}.", 0),       // wrong: rejected before dedup
            ("So: \\boxed{4}", 1)));                // third distinct correct sample: over the cap of 2
        Assert.Equal([null, RejectReason.Duplicate, null, RejectReason.Wrong, RejectReason.OverMaxKept], verdicts);

        var noDedup = new SampleFilter(new DistillFilterConfig { MaxKeptPerProblem = 4, Dedup = false, Language = null }, Plain);
        Assert.Equal([null, null], noDedup.SelectForProblem(Problem(noDedup, ("\\boxed{4}", 1), ("\\boxed{4}", 1))));
        Assert.Equal("the answer is \\boxed{4}.", SampleFilter.Normalize("  The\tanswer  IS \\boxed{4}.\n"));
    }

    [Fact]
    public void Pass_rate_band_keeps_a_problems_samples_only_when_its_mean_reward_is_inside()
    {
        var cfg = new DistillFilterConfig { MinPassRate = 0.3, MaxPassRate = 0.8, MaxKeptPerProblem = 8, Language = null, MaxRepetition = null };
        var f = new SampleFilter(cfg, Plain);
        (string, double) Right(int i) => ($"{i} + 0 = {i}, \\boxed{{{i}}}", 1);
        (string, double) Wrong(int i) => ($"wrong {i}", 0);
        // 1 of 4 right: mean 0.25 < 0.3 -> the right one is rejected as pass_rate (too hard), the others stay wrong
        Assert.Equal([RejectReason.PassRate, RejectReason.Wrong, RejectReason.Wrong, RejectReason.Wrong],
            f.SelectForProblem(Problem(f, Right(1), Wrong(2), Wrong(3), Wrong(4))));
        // 2 of 4: mean 0.5 -> both right ones kept
        Assert.Equal([null, null, RejectReason.Wrong, RejectReason.Wrong], f.SelectForProblem(Problem(f, Right(1), Right(2), Wrong(3), Wrong(4))));
        // 4 of 4: mean 1.0 > 0.8 -> too easy, all rejected
        Assert.Equal(Enumerable.Repeat<string?>(RejectReason.PassRate, 4), f.SelectForProblem(Problem(f, Right(1), Right(2), Right(3), Right(4))));
        // the bounds are inclusive: 0.8 = 4 of 5
        Assert.Equal([null, null, null, null, RejectReason.Wrong], f.SelectForProblem(Problem(f, Right(1), Right(2), Right(3), Right(4), Wrong(5))));
    }

    [Fact]
    public void Ngram_decontamination_matches_shared_word_ngrams_ignoring_case_and_punctuation()
    {
        var index = new NgramIndex(4);
        index.Add("Tom has 3 apples. He eats one; how many are left?");
        index.Add("Short one");    // fewer than 4 words: matches only the same word sequence

        Assert.Equal(["tom", "has", "3", "apples", "he", "eats"], NgramIndex.Words("Tom has 3 apples. He eats").ToList());
        Assert.True(index.Overlaps("Yesterday TOM HAS 3 APPLES, then more."));              // "tom has 3 apples"
        Assert.True(index.Overlaps("eats one -- how many"));                                // "eats one how many"
        Assert.False(index.Overlaps("Tom has 4 apples. He eats two; how much is left?"));  // no 4 words in a row shared
        Assert.False(index.Overlaps("Tom has 3"));                                          // 3 words: no 4-gram, not a known short text
        Assert.True(index.Overlaps("short, ONE!"));
        Assert.False(index.Overlaps("a short one"));
        Assert.Equal(2, index.Texts);
    }

    [Fact]
    public void Decontaminated_problems_are_dropped_and_counted_before_max_problems_applies()
    {
        using var tmp = new Infra.TempDir();
        File.WriteAllLines(tmp["eval.jsonl"], ["{\"question\": \"What is the sum of seven and eight apples in the basket today?\"}"]);
        File.WriteAllLines(tmp["train.jsonl"],
        [
            "{\"prompt\": \"P0: what is two plus two\", \"answer\": 4}",
            "{\"prompt\": \"Tell me: what is the sum of seven and eight apples in the basket now\", \"answer\": 15}",  // shares a 6-gram
            "{\"prompt\": \"P2: what is three plus three\", \"answer\": 6}",
            "{\"prompt\": \"P3: what is four plus four\", \"answer\": 8}",
        ]);
        var eval = NgramIndex.FromEvalSets(new DecontaminationConfig { Paths = [tmp["eval.jsonl"]], Column = "question", Ngram = 6 });
        var problems = new DistillProblems(new DistillDataConfig { Path = tmp["train.jsonl"], MaxProblems = 2 }, eval);
        Assert.Equal(4, problems.Rows);
        Assert.Equal(1, problems.Decontaminated);
        Assert.Equal(["train.jsonl:1", "train.jsonl:3"], problems.Items.Select(p => p.Id));
        Assert.Equal([0, 1], problems.Items.Select(p => p.Index));
        Assert.Equal(6L, problems.Items[1].Columns["answer"]);

        var bad = Assert.Throws<PostTrain.Data.DataException>(() => NgramIndex.FromEvalSets(new DecontaminationConfig { Paths = [tmp["eval.jsonl"]] }));
        Assert.Contains("eval.jsonl, line 1, column 'prompt'", bad.Message);
    }

    [Fact]
    public void Reasoning_template_builds_the_conversation_and_finds_the_answer()
    {
        var m = Think.Messages("What is 2+2?");
        Assert.Equal(2, m.Count);
        Assert.Contains("<think>", m[0].Content);
        Assert.Equal("What is 2+2?", m[1].Content);
        Assert.Single(Plain.Messages("x"));
        var custom = new ReasoningTemplate(ReasoningFormat.Think, "", "Solve: {prompt}\nThink first.");
        Assert.Equal("Solve: 7*6\nThink first.", Assert.Single(custom.Messages("7*6")).Content);   // "" = no system prompt
        Assert.Equal(" \\boxed{4}", Think.Answer("<think>a</think> \\boxed{4}"));
        Assert.Equal("", Think.Answer("<think>a \\boxed{4}"));
        Assert.Equal("all of it", Plain.Answer("all of it"));
        Assert.Throws<RecipeConfigException>(() => new ReasoningTemplate(ReasoningFormat.None, null, "no placeholder"));
    }

    [Fact]
    public void Backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half_and_honours_retry_after()
    {
        Assert.Equal(0.5, Backoff.Delay(0, 1, 60, u: 0).TotalSeconds, 9);
        Assert.Equal(1.0, Backoff.Delay(0, 1, 60, u: 1).TotalSeconds, 9);
        Assert.Equal(6.0, Backoff.Delay(3, 1, 60, u: 0.5).TotalSeconds, 9);     // 8 s step * 0.75
        Assert.Equal(45.0, Backoff.Delay(10, 1, 60, u: 0.5).TotalSeconds, 9);   // capped at 60 s * 0.75
        Assert.Equal(7.0, Backoff.Delay(0, 1, 60, u: 0, retryAfterSeconds: 7).TotalSeconds, 9);
        Assert.Equal(60.0, Backoff.Delay(0, 1, 60, u: 0, retryAfterSeconds: 600).TotalSeconds, 9);
        Assert.All(new[] { 0, 408, 429, 500, 502, 503, 504 }, s => Assert.True(Backoff.IsRetryable(s), $"{s}"));
        Assert.All(new[] { 200, 400, 401, 403, 404, 413, 422 }, s => Assert.False(Backoff.IsRetryable(s), $"{s}"));
    }
}
