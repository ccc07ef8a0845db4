// Held-out evaluation for GRPO recipes: greedy completions of the first rows of a split, scored by the eval rewards;
// the mean weighted total is reported (for a 0/1 reward such as math: the accuracy). Greedy decoding makes the
// number a deterministic function of the weights.
using PostTrain.Core.Generation;
using PostTrain.Core.Model;
using PostTrain.Data.Tokenizers;
using PostTrain.Rewards;

namespace PostTrain.Training.Grpo;

public sealed record EvalResult(double Mean, int Rows, IReadOnlyDictionary<string, double> Metrics);

public sealed class HeldOutEval(PromptSet prompts, RewardRunner rewards, ITokenizer tokenizer, int maxNewTokens)
{
    public EvalResult Run(DeepSeekForCausalLM model, CancellationToken ct)
    {
        model.eval();
        var gen = new TokenGenerator(model);
        var results = gen.Generate(prompts.Items.Select(p => p.Ids).ToList(),
            SamplingParams.Greedy(maxNewTokens) with { StopTokenIds = [tokenizer.EosId] }, ct);
        var inputs = results.Select((r, i) =>
            new RewardInput(prompts.Items[i].Text, RolloutCollector.DecodeCompletion(tokenizer, r), prompts.Items[i].Columns)).ToList();
        var scored = rewards.Score(inputs);
        double mean = scored.Totals.Average(t => t ?? 0.0);
        return new EvalResult(mean, inputs.Count, scored.ToMetrics("eval/"));
    }
}
