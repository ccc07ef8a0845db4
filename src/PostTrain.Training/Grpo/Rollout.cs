// Rollouts: the current policy samples G completions per prompt through the generation engine (recording pi_old's
// log-probs as it samples), the weighted rewards score them (RewardRunner: parallel, time-limited; a reward that
// fails or times out scores null and never stops training), and each completion keeps its total reward
// (null totals count as 0, as TRL's nansum). Timings are split into generation and reward scoring.
using System.Diagnostics;
using PostTrain.Core.Generation;
using PostTrain.Core.Model;
using PostTrain.Data.Tokenizers;
using PostTrain.Rewards;

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

/// <summary>What one sampling round produced, with the reward statistics and timings.</summary>
public sealed record RolloutRound(IReadOnlyList<RolloutGroup> Groups, RewardBatchResult Scores, double GenerationSeconds,
    double RewardSeconds, long GeneratedTokens);

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
        var sw = Stopwatch.StartNew();
        model.eval();
        IReadOnlyList<GenerationResult> results = ids.Count == 0 ? [] : _generator.Generate(ids, sampling, ct);   // a rank may hold no prompt
        double genSeconds = sw.Elapsed.TotalSeconds;

        sw.Restart();
        var texts = results.Select(r => CompletionText.Decode(tokenizer, r)).ToList();
        var inputs = texts.Select((t, i) => new RewardInput(prompts[i / G].Text, t, prompts[i / G].Columns)).ToList();
        var scored = rewards.Score(inputs);
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
                completions.Add(new Completion(r.TokenIds, r.LogProbs, texts[i], r.FinishReason == FinishReason.Length,
                    r.FinishReason, scored.Totals[i] ?? 0.0, scores, r.Routing));
            }
            groups.Add(new RolloutGroup(prompts[p], completions));
        }
        return new RolloutRound(groups, scored, genSeconds, rewardSeconds, results.Sum(r => (long)r.Length));
    }
}
