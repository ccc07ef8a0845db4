// What a training run needs of an optimizer: a learning rate set every step, a step over the parameters that have
// gradients, zeroing the gradients, and its state as named tensors for checkpoints (LoadStateDict checks every key).
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PostTrain.Core.Precision;

public interface IOptimizer : IDisposable
{
    double LearningRate { get; set; }

    /// <summary>The parameters it updates, in a fixed order (gradient clipping and reductions use this order).</summary>
    IReadOnlyList<Parameter> Parameters { get; }

    void Step();
    void ZeroGrad();
    Dictionary<string, Tensor> StateDict();

    /// <summary>The state as StateDict gives it, but aliasing the optimizer's own tensors where it can (no copy; valid
    /// until the next step): for a checkpoint written before the next step. Disposing the aliases is safe.</summary>
    Dictionary<string, Tensor> StateAliases() => StateDict();

    void LoadStateDict(IReadOnlyDictionary<string, Tensor> state);
}
