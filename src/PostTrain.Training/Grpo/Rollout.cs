// Rollouts: the current policy samples G completions per prompt through the generation engine (recording pi_old's
// log-probs as it samples), the weighted rewards score them (RewardRunner: parallel, time-limited; a reward that
// fails or times out scores null and never stops training), and each completion keeps its total reward
// (null totals count as 0, as TRL's nansum). Scoring is streamed: the engine's per-token callback sees a row end (the
// end-of-sequence token, or max_completion_length tokens: the only stop rules GRPO sets) and the row is decoded and
// handed to a RewardStream at once, so sandboxed code rewards run while the other rows are still decoding. Timings:
// generation, and the reward time left after generation ended (what the step waits for).
using System.Diagnostics;
using PostTrain.Core.Generation;
using PostTrain.Core.Model;
using PostTrain.Data.Tokenizers;
using PostTrain.Rewards;
using PostTrain.Rewards.Builtins;

namespace PostTrain.Training.Grpo;

/// <summary>One completion: tokens and pi_old log-probs from the sampler, its text, whether it hit the length limit,
/// its total reward and each reward's score (null = not applicable or failed), and the experts its tokens were routed
/// to while sampling (MoE models; for routing replay and the routing-disagreement metric).</summary>
public sealed record Completion(int[] TokenIds, float[] OldLogProbs, string Text, bool Truncated, string FinishReason,
    double Reward, IReadOnlyList<double?> Scores, RoutingTrace? Routing = null);

/// <summary>A prompt with its G completions.</summary>
public sealed record RolloutGroup(PromptItem Prompt, IReadOnlyList<Completion> Completions)
{
    public IReadOnlyList<double> Rewards => Completions.Select(c => c.Reward).ToList();
}

/// <summary>What one sampling round produced, with the reward statistics and timings. <see cref="RewardSeconds"/>: the
/// scoring time after generation ended; <see cref="ScoredDuringGeneration"/>: the share of completions whose per-sample
/// rewards were already done when it ended.</summary>
public sealed record RolloutRound(IReadOnlyList<RolloutGroup> Groups, RewardBatchResult Scores, double GenerationSeconds,
    double RewardSeconds, long GeneratedTokens, double ScoredDuringGeneration);

public sealed class RolloutCollector(DeepSeekForCausalLM model, ITokenizer tokenizer, RewardRunner rewards, GrpoAlgorithmConfig cfg)
{
    private readonly TokenGenerator _generator = new(model, new GenerationOptions { MaxBatchSize = 256, RecordRouting = model.MoeLayers().Any() });

    /// <summary>G completions for each prompt, sampled with <paramref name="seed"/> (the counter-based sampler makes the
    /// draws a function of (seed, row, token index) alone; row = <paramref name="firstRow"/> + index here, so a
    /// data-parallel rank's share of a batch draws what one process draws for those rows), then scored.</summary>
    public RolloutRound Sample(IReadOnlyList<PromptItem> prompts, long seed, int firstRow, CancellationToken ct)
    {
        int G = cfg.NumGenerations;
        var ids = prompts.SelectMany(p => Enumerable.Repeat(p.Ids, G)).ToList();
        var sampling = new SamplingParams(cfg.Temperature, cfg.TopP, cfg.TopK, cfg.MinP, cfg.MaxCompletionLength,
            StopTokenIds: [tokenizer.EosId], Seed: seed, FirstRowKey: firstRow);
        var stream = rewards.OpenStream(ids.Count, ct);
        var texts = new string?[ids.Count];
        var scoring = new Task<double?>?[ids.Count];
        var rows = ids.Select(_ => (Tokens: new List<int>(), LogProbs: new List<float>())).ToArray();
        void Submit(int i, GenerationResult r)
        {
            texts[i] = CompletionText.Decode(tokenizer, r);
            // The row's columns plus its length in tokens (the `length` reward's completion_tokens column).
            var columns = new Dictionary<string, object?>(prompts[i / G].Columns) { [LengthReward.TokensColumn] = r.Length };
            scoring[i] = stream.Add(i, new RewardInput(prompts[i / G].Text, texts[i]!, columns));
        }
        bool OnToken(int row, int token, float logProb)
        {
            var (tokens, logProbs) = rows[row];
            tokens.Add(token);
            logProbs.Add(logProb);
            bool eos = token == tokenizer.EosId;
            if (eos || tokens.Count >= cfg.MaxCompletionLength)
                Submit(row, new GenerationResult([.. tokens], [.. logProbs], eos ? FinishReason.Stop : FinishReason.Length, eos ? token : null));
            return true;
        }

        var sw = Stopwatch.StartNew();
        model.eval();
        IReadOnlyList<GenerationResult> results = ids.Count == 0 ? [] : _generator.Generate(ids, sampling, OnToken, ct);   // a rank may hold no prompt
        double genSeconds = sw.Elapsed.TotalSeconds;

        sw.Restart();
        int scoredDuringGeneration = scoring.Count(t => t is { IsCompleted: true });
        // Every row must have been streamed with exactly the tokens the generator returned (a stop rule GRPO does not
        // set, or a generator that ends rows differently, would break the streamed scoring: fail loudly).
        for (int i = 0; i < results.Count; i++)
            if (scoring[i] is null || rows[i].Tokens.Count != results[i].Length)
                throw new InvalidOperationException($"rollout row {i}: streamed {(scoring[i] is null ? "no completion" : $"{rows[i].Tokens.Count} tokens")} to the rewards, the generator returned {results[i].Length} tokens ({results[i].FinishReason})");
        var scored = stream.CompleteAsync().GetAwaiter().GetResult();
        double rewardSeconds = sw.Elapsed.TotalSeconds;

        var groups = new List<RolloutGroup>(prompts.Count);
        for (int p = 0; p < prompts.Count; p++)
        {
            var completions = new List<Completion>(G);
            for (int g = 0; g < G; g++)
            {
                int i = p * G + g;
                var r = results[i];
                var scores = Enumerable.Range(0, scored.Names.Count).Select(k => scored.Score(i, k)).ToList();
                completions.Add(new Completion(r.TokenIds, r.LogProbs, texts[i]!, r.FinishReason == FinishReason.Length,
                    r.FinishReason, scored.Totals[i] ?? 0.0, scores, r.Routing));
            }
            groups.Add(new RolloutGroup(prompts[p], completions));
        }
        return new RolloutRound(groups, scored, genSeconds, rewardSeconds, results.Sum(r => (long)r.Length),
            scoredDuringGeneration / (double)results.Count);
    }
}
