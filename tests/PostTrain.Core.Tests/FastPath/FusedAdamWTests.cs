// Fused AdamW (one torch._fused_adamw_ per parameter group, lr and steps in tensors) against the plain AdamW, step by
// step, with weight decay excluded for some names; the grad-norm clip against the norm computed by hand; the fused
// state round trip. Fails if the fused script is wrong or the groups/step counts are mixed up.
using PostTrain.Core.Precision;
using PostTrain.Core.Tests.Precision;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using AdamW = PostTrain.Core.Precision.AdamW;

namespace PostTrain.Core.Tests.FastPath;

public sealed class FusedAdamWTests
{
    [Fact]
    public void ScriptCompiles() => OptimizerScripts.EnsureCompiled();

    [Fact]
    public void FusedEqualsPlainOverTenStepsWithDecayExclusions()
    {
        var rng = new Rng(71);
        var init = new[] { rng.Randn(6, 5), rng.Randn(7), rng.Randn(3, 2, 4) };
        string[] names = ["w", "norm.weight", "experts"];
        var plainP = init.Select(t => nn.Parameter(t.clone())).ToArray();
        var fusedP = init.Select(t => nn.Parameter(t.clone())).ToArray();
        using var plain = new AdamW(names.Zip(plainP), lr: 3e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, noDecay: ["norm.weight"]);
        using var fused = new AdamW(names.Zip(fusedP), lr: 3e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, noDecay: ["norm.weight"], fused: true);
        for (int step = 0; step < 10; step++)
        {
            double lr = 3e-2 * (1 - step / 20.0);
            plain.LearningRate = lr;
            fused.LearningRate = lr;
            for (int i = 0; i < init.Length; i++)
            {
                var g = rng.Randn(init[i].shape);
                plainP[i].grad = g.clone();
                fusedP[i].grad = g.clone();
            }
            plain.Step();
            fused.Step();
            for (int i = 0; i < init.Length; i++)
            {
                double diff = (plainP[i] - fusedP[i]).abs().max().item<float>();
                Assert.True(diff < 2e-6, $"step {step} {names[i]}: fused differs from plain by {diff}");
            }
        }
        // decay really was excluded for the norm (a fused run without the exclusion differs)
        Assert.True((plainP[0] - init[0]).abs().max().item<float>() > 1e-3);
        var state = fused.StateDict();
        Assert.Equal(10L, state["experts.step"].item<long>());
        fused.ZeroGrad();
        Assert.All(fusedP, p => Assert.Equal(0f, p.grad!.abs().max().item<float>()));
    }

    [Fact]
    public void GuardedStepSkipsOnFoundInfAndCountsOnlyAppliedSteps()
    {
        var p = nn.Parameter(tensor(new float[] { 1f, -2f }));
        var q = nn.Parameter(tensor(new float[] { 1f, -2f }));
        using var guarded = new AdamW([("w", p)], lr: 0.1, weightDecay: 0.0, fused: true);
        using var plain = new AdamW([("w", q)], lr: 0.1, weightDecay: 0.0, fused: true);
        foreach (var (grad, skip) in new[] { (0.5f, 0f), (0.3f, 1f), (-0.2f, 0f) })
        {
            p.grad = tensor(new[] { grad, grad });
            guarded.UploadLearningRate();
            guarded.FusedStepKernels(tensor(skip));
            if (skip == 0)
            {
                q.grad = tensor(new[] { grad, grad });
                plain.Step();
            }
        }
        Assert.Equal(2L, guarded.StateDict()["w.step"].item<long>());
        Assert.True((p - q).abs().max().item<float>() < 1e-7, "a skipped step changed the parameters or moments");
        Assert.True((p - tensor(new float[] { 1f, -2f })).abs().max().item<float>() > 1e-2, "no step was applied");
    }

    [Fact]
    public void ClipScalesToMaxNormAndReturnsNormBeforeClipping()
    {
        var a = tensor(new float[] { 3, 0 });
        var b = tensor(new float[] { 0, 4, 0 });   // global norm 5
        var norm = OptimizerScripts.ClipGradNorm([a, b], 1.0);
        Assert.Equal(5f, norm.item<float>(), 5);
        Assert.Equal(3f / (5 + 1e-6f), a[0].item<float>(), 5);
        Assert.Equal(4f / (5 + 1e-6f), b[1].item<float>(), 5);
        var small = tensor(new float[] { 0.3f });
        OptimizerScripts.ClipGradNorm([small], 1.0);
        Assert.Equal(0.3f, small.item<float>(), 6);   // under the max: unchanged
    }

    [Fact]
    public void Bf16MomentsWithFp32ParametersAreRefused()
    {
        var p = nn.Parameter(zeros(3));
        var e = Assert.Throws<ArgumentException>(() => new AdamW([("w", p)], bf16Moments: true, fused: true));
        Assert.Contains("'w'", e.Message);
    }
}
