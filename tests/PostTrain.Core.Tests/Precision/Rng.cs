// A private random stream per test: xunit runs test classes in parallel and torch.manual_seed is global,
// so seeded data would otherwise depend on what other tests draw at the same time.
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Precision;

internal sealed class Rng(ulong seed)
{
    private readonly Generator generator = new(seed);

    public Tensor Randn(params long[] shape) => randn(shape, generator: generator);
}
