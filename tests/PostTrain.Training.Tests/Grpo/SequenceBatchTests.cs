// The training forward's completion log-probs: a padded batch gives what each row gives alone, and they agree with the
// log-probs the generation engine recorded while sampling (pi_old) in fp32, at temperature 1 and 0.7.
using PostTrain.Core.Generation;
using PostTrain.Core.Model;
using PostTrain.Training.Grpo;
using static TorchSharp.torch;

namespace PostTrain.Training.Tests.Grpo;

[Collection(PostTrain.Training.Tests.Recipes.TorchGlobalRngCollection.Name)]
public sealed class SequenceBatchTests
{
    private static DeepSeekForCausalLM Model()
    {
        var m = new DeepSeekForCausalLM(BuiltinModels.Micro());
        m.InitWeights(std: 0.2, seed: 11);   // large weights: peaked, unequal distributions
        m.eval();
        return m;
    }

    private static readonly int[][] Prompts = [[257, 72, 105], [257, 10], [257, 1, 2, 3, 4, 5]];

    [Fact]
    public void Padded_batch_equals_each_row_alone()
    {
        using var scope = NewDisposeScope();
        using var model = Model();
        int[][] completions = [[5, 6, 7, 8], [9], [10, 11]];
        using var batch = new SequenceBatch(Prompts, completions, completionColumns: 5);
        var (lp, entropy) = batch.LogProbs(model, temperature: 1, withEntropy: true);
        Assert.Equal([3L, 5], lp.shape);
        for (int i = 0; i < Prompts.Length; i++)
        {
            var ids = Prompts[i].Concat(completions[i]).Select(x => (long)x).ToArray();
            var logits = model.Forward(tensor(ids, [1, ids.Length])).Logits[0];              // (L, V)
            var logp = logits.log_softmax(-1);
            for (int j = 0; j < completions[i].Length; j++)
            {
                int col = Prompts[i].Length + j - 1;
                Assert.Equal(logp[col, completions[i][j]].item<float>(), lp[i, j].item<float>(), 4);
                Assert.Equal(Entropy.FromLogits(logits[col]).item<float>(), entropy![i, j].item<float>(), 4);
            }
        }
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.7)]
    public void Generator_log_probs_equal_the_training_forward_in_fp32(double temperature)
    {
        using var scope = NewDisposeScope();
        using var model = Model();
        var gen = new TokenGenerator(model);
        var results = gen.Generate(Prompts, new SamplingParams(Temperature: temperature, MaxNewTokens: 6, StopTokenIds: [], Seed: 3));
        using var batch = new SequenceBatch(Prompts, results.Select(r => r.TokenIds).ToList(), 6);
        var (lp, _) = batch.LogProbs(model, temperature, withEntropy: false);
        double maxDiff = 0;
        for (int i = 0; i < Prompts.Length; i++)
        {
            Assert.Equal(6, results[i].TokenIds.Length);
            for (int j = 0; j < 6; j++) maxDiff = Math.Max(maxDiff, Math.Abs(results[i].LogProbs[j] - lp[i, j].item<float>()));
        }
        Assert.True(maxDiff < 1e-4, $"generator vs training log-probs differ by {maxDiff}");
        Assert.True(results.SelectMany(r => r.LogProbs).Min() < -1, "the test distributions are not trivially peaked at 1");
    }
}
