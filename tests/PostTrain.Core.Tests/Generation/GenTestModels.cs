// Shared helpers for the generation tests: seeded random Micro models and independent full-forward references.
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Generation;

internal static class GenTestModels
{
    public static DeepSeekForCausalLM Micro(long seed = 11, double std = 0.2)
    {
        var m = new DeepSeekForCausalLM(BuiltinModels.Micro());
        m.InitWeights(std, seed);
        m.eval();
        return m;
    }

    /// <summary>No q LoRA, YaRN (softmax scale with mscale), tied embeddings, 2 dense layers (the parity fixture's config).</summary>
    public static DeepSeekForCausalLM NoQLoraYarn(long seed = 11)
    {
        var m = new DeepSeekForCausalLM(ModelConfig.Load(Path.Combine(AppContext.BaseDirectory, "Fixtures/parity/noqlora_yarn/config.json")));
        m.InitWeights(0.2, seed);
        m.eval();
        return m;
    }

    /// <summary>Random prompts with ids in [1, 256) (valid for every test model).</summary>
    public static int[][] Prompts(int seed, params int[] lengths)
    {
        var rng = new Random(seed);
        return lengths.Select(n => Enumerable.Range(0, n).Select(_ => rng.Next(1, 256)).ToArray()).ToArray();
    }

    /// <summary>fp32 logits (T, V) of the plain full forward over one unpadded sequence.</summary>
    public static Tensor FullLogits(DeepSeekForCausalLM m, IEnumerable<int> ids)
    {
        using var _ = no_grad();
        var arr = ids.Select(i => (long)i).ToArray();
        return m.Forward(tensor(arr).view(1, -1)).Logits[0];
    }

    /// <summary>Greedy continuation by repeated full forwards (no cache).</summary>
    public static int[] GreedyByFullForward(DeepSeekForCausalLM m, int[] prompt, int steps)
    {
        var seq = prompt.ToList();
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            var logits = FullLogits(m, seq);
            seq.Add((int)logits[-1].argmax().item<long>());
        }
        return seq.Skip(prompt.Length).ToArray();
    }
}
