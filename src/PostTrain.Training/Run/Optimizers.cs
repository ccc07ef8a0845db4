// The optimizer a trainer config asks for, over a module's named parameters: AdamW (decoupled weight decay, none on
// norms, biases and the routing bias; optional bf16 moments as in DeepSeek-V3) or plain SGD.
using PostTrain.Core.Precision;
using PostTrain.Training.Recipes;
using Parameter = TorchSharp.Modules.Parameter;

namespace PostTrain.Training.Run;

public static class Optimizers
{
    public static IOptimizer Create(OptimizerConfig o, IReadOnlyList<(string Name, Parameter Param)> named)
    {
        if (o.Betas.Count != 2) throw new RecipeConfigException($"optimizer.betas: must be a list of two numbers, got {o.Betas.Count}");
        if (o.Lr < 0) throw new RecipeConfigException($"optimizer.lr: must be >= 0, got {o.Lr}");
        return o.Name switch
        {
            OptimizerKind.AdamW => new AdamW(named, o.Lr, o.Betas[0], o.Betas[1], o.Eps, o.WeightDecay, o.Bf16Moments,
                named.Select(p => p.Name).Where(NoDecay)),
            _ => new Sgd(named.Select(p => p.Param), o.Lr, o.WeightDecay),
        };
    }

    /// <summary>Parameter names that get no weight decay: norms, biases and the routing bias.</summary>
    public static bool NoDecay(string name) => name.Contains("norm") || name.EndsWith(".bias") || name.Contains("e_score_correction_bias");
}
