// The optimizer a trainer config asks for, over a module's named parameters: AdamW (decoupled weight decay, none on
// norms, biases and the routing bias; optional bf16 moments as in DeepSeek-V3), optionally with its state and update
// on the host (optimizer.offload: host), or plain SGD. Parameters kept in bf16 on the device (model.param_dtype) train
// only with fp32 masters somewhere (the host-offloaded AdamW has them) or with stochastic rounding
// (optimizer.stochastic_rounding: the on-device AdamW updates in fp32 and rounds back unbiased); the plain on-device
// AdamW would round every update to nearest bf16, losing the small ones, so it refuses them. optimizer.fused: the on-device AdamW as one fused kernel per parameter group, same update
// and state (auto: when the training fast path runs the step, which needs it; the plain step stays per parameter until
// the fused kernel is measured through the recipes on a GPU).
using PostTrain.Core.Precision;
using PostTrain.Training.Recipes;
using Parameter = TorchSharp.Modules.Parameter;

namespace PostTrain.Training.Run;

public static class Optimizers
{
    /// <param name="fused">AdamW as one fused kernel per parameter group (the training fast path's optimizer; same state).</param>
    public static IOptimizer Create(OptimizerConfig o, IReadOnlyList<(string Name, Parameter Param)> named, bool fused = false)
    {
        if (o.Betas.Count != 2) throw new RecipeConfigException($"optimizer.betas: must be a list of two numbers, got {o.Betas.Count}");
        if (o.Lr < 0) throw new RecipeConfigException($"optimizer.lr: must be >= 0, got {o.Lr}");
        if (o.Offload == OptimizerOffload.Host && o.Name != OptimizerKind.AdamW)
            throw new RecipeConfigException($"optimizer.offload: host is for adamw only, optimizer.name is {o.Name.ToString().ToLowerInvariant()}");
        var bf16 = named.FirstOrDefault(p => p.Param.dtype == TorchSharp.torch.ScalarType.BFloat16);
        if (o.StochasticRounding)
        {
            if (o.Name != OptimizerKind.AdamW || o.Offload != OptimizerOffload.None || o.Fused == FusedOptimizer.True)
                throw new RecipeConfigException("optimizer.stochastic_rounding: is for adamw on the device (optimizer.name: adamw, offload: none, fused: false or auto)");
            var notBf16 = named.FirstOrDefault(p => p.Param.dtype != TorchSharp.torch.ScalarType.BFloat16);
            if (notBf16.Param is not null)
                throw new RecipeConfigException($"optimizer.stochastic_rounding: is for bfloat16 parameters (model.param_dtype: bfloat16); '{notBf16.Name}' is {notBf16.Param.dtype}");
            return new AdamW(named, o.Lr, o.Betas[0], o.Betas[1], o.Eps, o.WeightDecay, o.Bf16Moments, named.Select(p => p.Name).Where(NoDecay),
                stochasticRounding: true);
        }
        if (bf16.Param is not null && o.Offload == OptimizerOffload.None)
            throw new RecipeConfigException($"optimizer.offload: parameter '{bf16.Name}' is bfloat16 (model.param_dtype) and would train without fp32 " +
                "master weights; set optimizer.offload: host (fp32 masters on the host), optimizer.stochastic_rounding: true (on the device, " +
                "unbiased rounding of each update), or train LoRA adapters");
        if (o.Fused == FusedOptimizer.True && (o.Name != OptimizerKind.AdamW || o.Offload != OptimizerOffload.None))
            throw new RecipeConfigException("optimizer.fused: true is for adamw on the device (optimizer.name: adamw, optimizer.offload: none)");
        if (o.Fused == FusedOptimizer.True && o.Bf16Moments)
            throw new RecipeConfigException("optimizer.fused: true keeps the moments in the parameters' dtype (fp32); optimizer.bf16_moments needs fused: false");
        fused = fused || o.Fused switch
        {
            FusedOptimizer.True => true,
            FusedOptimizer.False => false,
            _ => false,   // auto: only where the caller (the fast path) asks for it
        };
        if (o.Offload == OptimizerOffload.Host)
            return new HostOffloadAdamW(named, o.Lr, o.Betas[0], o.Betas[1], o.Eps, o.WeightDecay, o.Bf16Moments, named.Select(p => p.Name).Where(NoDecay));
        return o.Name switch
        {
            OptimizerKind.AdamW => new AdamW(named, o.Lr, o.Betas[0], o.Betas[1], o.Eps, o.WeightDecay, o.Bf16Moments,
                named.Select(p => p.Name).Where(NoDecay), fused),
            _ => new Sgd(named.Select(p => p.Param), o.Lr, o.WeightDecay),
        };
    }

    /// <summary>Parameter names that get no weight decay: norms, biases and the routing bias.</summary>
    public static bool NoDecay(string name) => name.Contains("norm") || name.EndsWith(".bias") || name.Contains("e_score_correction_bias");
}
