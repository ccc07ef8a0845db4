// A seeded InitWeights on the CPU draws from its own generator: the same values as seeding the global generator and
// drawing from it in parameter order (the old behaviour, written out here), the global generator left in the same state
// afterwards, whatever state the global generator was in before.
using PostTrain.Core.Model;
using PostTrain.Core.Tests.Recompute;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Model;

[Collection(GlobalRngCollection.Name)]
public sealed class InitWeightsTests
{
    [Fact]
    public void Seeded_init_equals_the_global_generator_stream_and_leaves_it_in_the_same_state()
    {
        using var a = new DeepSeekForCausalLM(BuiltinModels.Micro());
        a.InitWeights(0.05, 11);
        var nextA = randn(4);

        using var b = new DeepSeekForCausalLM(BuiltinModels.Micro());
        using (no_grad())
        {
            random.manual_seed(11);
            foreach (var (name, p) in b.named_parameters())
            {
                if (name.EndsWith("norm.weight") || name.Contains("layernorm")) p.fill_(1.0);
                else if (name.EndsWith(".bias")) p.zero_();
                else p.normal_(0, 0.05);
            }
        }
        var nextB = randn(4);
        var pa = a.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in b.named_parameters())
            Assert.True((pa[name] == p).all().item<bool>(), name);
        Assert.True((nextA == nextB).all().item<bool>(), "the global generator continues as before");

        using var c = new DeepSeekForCausalLM(BuiltinModels.Micro());
        random.manual_seed(999);                       // the global generator elsewhere
        randn(100);
        c.InitWeights(0.05, 11);
        foreach (var (name, p) in c.named_parameters())
            Assert.True((pa[name] == p).all().item<bool>(), name);
    }
}
