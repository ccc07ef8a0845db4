// Plain SGD with coupled L2 weight decay, as torch.optim.SGD without momentum: g += wd * p; p -= lr * g.
// It has no state, so a checkpoint stores none.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PostTrain.Core.Precision;

public sealed class Sgd(IEnumerable<Parameter> parameters, double lr, double weightDecay = 0) : IOptimizer
{
    private readonly Parameter[] _parameters = parameters.ToArray();

    public double LearningRate { get; set; } = lr;

    public IReadOnlyList<Parameter> Parameters => _parameters;

    public void Step()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var p in _parameters)
        {
            if (p.grad is not { } g) continue;
            var d = weightDecay != 0 ? g.add(p, alpha: weightDecay) : g;
            p.add_(d, alpha: -LearningRate);
        }
    }

    public void ZeroGrad()
    {
        foreach (var p in _parameters) p.grad?.zero_();
    }

    public Dictionary<string, Tensor> StateDict() => [];

    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state) { }

    public void Dispose() { }
}
