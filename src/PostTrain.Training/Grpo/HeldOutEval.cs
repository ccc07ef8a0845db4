// Held-out evaluation for GRPO recipes: greedy completions of the first rows of a split, scored by the eval rewards;
// the mean weighted total is reported (for a 0/1 reward such as math: the accuracy). Greedy decoding makes the
// number a deterministic function of the weights. With samples > 0 it also draws that many completions per prompt
// at the rollout temperature (fixed seed) and reports their mean: the sampled policy's accuracy (pass@1), the number
// GRPO optimises directly, which can move while greedy accuracy does not.
using PostTrain.Core.Generation;
using PostTrain.Core.Model;
using PostTrain.Data.Tokenizers;
using PostTrain.Rewards;
using PostTrain.Training.Distributed;

namespace PostTrain.Training.Grpo;

/// <param name="SampledMean">Mean total over `samples` draws per prompt; null when samples = 0.</param>
public sealed record EvalResult(double Mean, int Rows, IReadOnlyDictionary<string, double> Metrics, double? SampledMean = null);

public sealed class HeldOutEval(DataParallel dp, PromptSet prompts, RewardRunner rewards, ITokenizer tokenizer, int maxNewTokens,
    int samples = 0, double temperature = 1.0, long seed = 0)
{
    /// <summary>Data parallel: each rank completes its contiguous share of the prompts (sampled rows keep their global
    /// row streams) and scores them; the reward calls are gathered in prompt order, so every number is one process's.</summary>
    public EvalResult Run(DeepSeekForCausalLM model, CancellationToken ct)
    {
        model.eval();
        var gen = new TokenGenerator(model);
        var (first, count) = dp.ShardRange(prompts.Items.Count);
        var ids = prompts.Items.Skip(first).Take(count).Select(p => p.Ids).ToList();
        var greedy = Score(Generate(gen, ids, SamplingParams.Greedy(maxNewTokens) with { StopTokenIds = [tokenizer.EosId] }, ct), first, 1);
        var metrics = greedy.ToMetrics("eval/");
        double mean = greedy.Totals.Average(t => t ?? 0.0);
        if (samples <= 0) return new EvalResult(mean, prompts.Items.Count, metrics);

        var repeated = ids.SelectMany(x => Enumerable.Repeat(x, samples)).ToList();
        var p = new SamplingParams(Temperature: temperature, MaxNewTokens: maxNewTokens, StopTokenIds: [tokenizer.EosId], Seed: seed,
            FirstRowKey: first * samples);
        var sampled = Score(Generate(gen, repeated, p, ct), first, samples);
        double sampledMean = sampled.Totals.Average(t => t ?? 0.0);
        var all = new Dictionary<string, double>(metrics) { ["eval/sampled_reward_mean"] = sampledMean };
        return new EvalResult(mean, prompts.Items.Count, all, sampledMean);
    }

    private static IReadOnlyList<GenerationResult> Generate(TokenGenerator gen, List<int[]> ids, SamplingParams p, CancellationToken ct) =>
        ids.Count == 0 ? [] : gen.Generate(ids, p, ct);   // a rank may hold no prompt

    /// <summary>Scores this rank's results (result i belongs to prompt first + i / <paramref name="perPrompt"/>), then
    /// gathers every rank's calls into the whole split's result.</summary>
    private RewardBatchResult Score(IReadOnlyList<GenerationResult> results, int first, int perPrompt)
    {
        var inputs = results.Select((r, i) =>
        {
            var item = prompts.Items[first + i / perPrompt];
            return new RewardInput(item.Text, CompletionText.Decode(tokenizer, r), item.Columns);
        }).ToList();
        var local = rewards.Score(inputs);
        return RewardBatchResult.FromCalls(rewards.Names, local.Weights, dp.Gather(local.Calls));
    }
}
