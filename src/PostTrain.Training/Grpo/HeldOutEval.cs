// Held-out evaluation for GRPO recipes: greedy completions of the first rows of a split, scored by the eval rewards;
// the mean weighted total is reported (for a 0/1 reward such as math: the accuracy). Greedy decoding makes the
// number a deterministic function of the weights. With samples > 0 it also draws that many completions per prompt
// at the rollout temperature (fixed seed) and reports their mean: the sampled policy's accuracy (pass@1), the number
// GRPO optimises directly, which can move while greedy accuracy does not.
using PostTrain.Core.Generation;
using PostTrain.Core.Model;
using PostTrain.Data.Tokenizers;
using PostTrain.Rewards;

namespace PostTrain.Training.Grpo;

/// <param name="SampledMean">Mean total over `samples` draws per prompt; null when samples = 0.</param>
public sealed record EvalResult(double Mean, int Rows, IReadOnlyDictionary<string, double> Metrics, double? SampledMean = null);

public sealed class HeldOutEval(PromptSet prompts, RewardRunner rewards, ITokenizer tokenizer, int maxNewTokens,
    int samples = 0, double temperature = 1.0, long seed = 0)
{
    public EvalResult Run(DeepSeekForCausalLM model, CancellationToken ct)
    {
        model.eval();
        var gen = new TokenGenerator(model);
        var ids = prompts.Items.Select(p => p.Ids).ToList();
        var greedy = Score(gen.Generate(ids, SamplingParams.Greedy(maxNewTokens) with { StopTokenIds = [tokenizer.EosId] }, ct), 1);
        var metrics = greedy.ToMetrics("eval/");
        double mean = greedy.Totals.Average(t => t ?? 0.0);
        if (samples <= 0) return new EvalResult(mean, ids.Count, metrics);

        var repeated = ids.SelectMany(x => Enumerable.Repeat(x, samples)).ToList();
        var p = new SamplingParams(Temperature: temperature, MaxNewTokens: maxNewTokens, StopTokenIds: [tokenizer.EosId], Seed: seed);
        var sampled = Score(gen.Generate(repeated, p, ct), samples);
        double sampledMean = sampled.Totals.Average(t => t ?? 0.0);
        var all = new Dictionary<string, double>(metrics) { ["eval/sampled_reward_mean"] = sampledMean };
        return new EvalResult(mean, ids.Count, all, sampledMean);
    }

    /// <summary>Scores results in prompt order; result i belongs to prompt i / <paramref name="perPrompt"/>.</summary>
    private RewardBatchResult Score(IReadOnlyList<GenerationResult> results, int perPrompt)
    {
        var inputs = results.Select((r, i) =>
        {
            var item = prompts.Items[i / perPrompt];
            return new RewardInput(item.Text, CompletionText.Decode(tokenizer, r), item.Columns);
        }).ToList();
        return rewards.Score(inputs);
    }
}
