using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Model;

public sealed class RouterTests
{
    // 4 experts, hidden 4, router weight = identity: logits = x.
    static Router Make(ModelConfig c, float[]? bias = null)
    {
        var r = new Router(c);
        using var _ = no_grad();
        r.Weight.copy_(eye(4));
        if (bias is not null) r.CorrectionBias!.copy_(tensor(bias));
        return r;
    }

    static ModelConfig Cfg => BuiltinModels.Micro() with { HiddenSize = 4, NRoutedExperts = 4, NumExpertsPerTok = 2, NGroup = 2, TopkGroup = 1, NormTopkProb = true, RoutedScalingFactor = 2.0 };

    [Fact]
    public void SigmoidGroupLimitedWithBiasForSelectionOnly()
    {
        // logits [2, 1, 0, 3] -> s = sigmoid = [.8808, .7311, .5, .9526]; bias [0, 0, 1, 0] -> choice [.8808, .7311, 1.5, .9526]
        // groups {0,1}: top2 sum 1.6119; {2,3}: 2.4526 -> keep group 2 -> experts 2 and 3.
        // weights = unbiased s at {2,3} = [.5, .9526], normalised /1.4526, times 2.
        var r = Make(Cfg, [0, 0, 1, 0]);
        var (idx, w, _) = r.Route(tensor(new float[] { 2, 1, 0, 3 }).view(1, 4));
        var pairs = idx.data<long>().ToArray().Zip(w.data<float>().ToArray()).OrderBy(p => p.First).ToArray();
        double s2 = 0.5, s3 = 1 / (1 + Math.Exp(-3));
        Assert.Equal([2L, 3L], pairs.Select(p => p.First));
        Assert.Equal(2 * s2 / (s2 + s3), pairs[0].Second, 5);
        Assert.Equal(2 * s3 / (s2 + s3), pairs[1].Second, 5);
    }

    [Fact]
    public void WithoutGroupsAndBiasTheTopScoresWin()
    {
        var c = Cfg with { NGroup = 1, TopkGroup = 1, NormTopkProb = false, RoutedScalingFactor = 1.0 };
        var r = Make(c);
        var (idx, w, _) = r.Route(tensor(new float[] { 2, 1, 0, 3 }).view(1, 4));
        var pairs = idx.data<long>().ToArray().Zip(w.data<float>().ToArray()).OrderBy(p => p.First).ToArray();
        Assert.Equal([0L, 3L], pairs.Select(p => p.First));
        Assert.Equal(1 / (1 + Math.Exp(-2)), pairs[0].Second, 5);   // not normalised
    }

    [Fact]
    public void SoftmaxV2RoutingUsesGroupMaxAndNoBias()
    {
        // softmax([2,1,0,3]); group max: {0,1} -> e^2, {2,3} -> e^3 -> keep {2,3}; top-2 = {2,3}
        var c = Cfg with { ModelType = "deepseek_v2", ScoringFunc = "softmax", UseCorrectionBias = false, NormTopkProb = false, RoutedScalingFactor = 1.0 };
        var r = Make(c);
        Assert.Null(r.CorrectionBias);
        var (idx, w, _) = r.Route(tensor(new float[] { 2, 1, 0, 3 }).view(1, 4));
        double z = Math.Exp(2) + Math.Exp(1) + 1 + Math.Exp(3);
        var pairs = idx.data<long>().ToArray().Zip(w.data<float>().ToArray()).OrderBy(p => p.First).ToArray();
        Assert.Equal([2L, 3L], pairs.Select(p => p.First));
        Assert.Equal(1 / z, pairs[0].Second, 5);
        Assert.Equal(Math.Exp(3) / z, pairs[1].Second, 5);
    }

    [Theory]
    [InlineData(ScalarType.Float32, ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16, ScalarType.BFloat16)]
    [InlineData(ScalarType.BFloat16, ScalarType.Float32)]
    public void RouterLogitsEqualTheFp32LinearOfTheCastsInValueAndGradient(ScalarType xType, ScalarType wType)
    {
        // RouterLogits saves x in its own dtype instead of linear's fp32 copy; the casts are exact, so the logits and
        // both gradients must equal linear(x.float(), w.float())'s bit for bit.
        var gen = new Generator(3);
        var x0 = randn(7, 12, generator: gen).to(xType);
        var w0 = randn(5, 12, generator: gen).to(wType);
        var upstream = randn(7, 5, generator: gen);
        var (x1, w1) = (x0.clone().requires_grad_(), w0.clone().requires_grad_());
        var (x2, w2) = (x0.clone().requires_grad_(), w0.clone().requires_grad_());
        var mine = RouterLogits.Apply(x1, w1);
        var plain = nn.functional.linear(x2.to(ScalarType.Float32), w2.to(ScalarType.Float32));
        Assert.Equal(ScalarType.Float32, mine.dtype);
        Assert.True(mine.equal(plain).all().item<bool>());
        (mine * upstream).sum().backward();
        (plain * upstream).sum().backward();
        Assert.Equal(xType, x1.grad!.dtype);
        Assert.Equal(wType, w1.grad!.dtype);
        Assert.True(x1.grad.equal(x2.grad!).all().item<bool>());
        Assert.True(w1.grad.equal(w2.grad!).all().item<bool>());
        Assert.True(x1.grad.to(ScalarType.Float32).abs().sum().item<float>() > 0 && w1.grad.to(ScalarType.Float32).abs().sum().item<float>() > 0);
    }
}
