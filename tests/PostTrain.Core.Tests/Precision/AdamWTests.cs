// AdamW against steps worked out by hand, against TorchSharp's torch.optim.AdamW (FP32 moments), BF16
// moment storage, weight-decay exclusion and the checkpoint state round trip.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using AdamW = PostTrain.Core.Precision.AdamW;

namespace PostTrain.Core.Tests.Precision;

public sealed class AdamWTests
{
    private static Parameter Param(params float[] values) => nn.Parameter(tensor(values));

    // d/dp sum(p * g) = g exactly.
    private static void SetGrad(Parameter p, params float[] g)
    {
        p.grad?.zero_();
        (p * tensor(g)).sum().backward();
    }

    [Fact]
    public void TwoStepsMatchHandComputation()
    {
        const double lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
        var p = Param(1f, -2f);
        using var opt = new AdamW([p], lr, b1, b2, eps, wd);
        var g1 = new[] { 0.5, 0.1 };
        var g2 = new[] { -0.5, 0.2 };

        SetGrad(p, 0.5f, 0.1f);
        opt.Step();
        // Step 1: p *= 1 - lr*wd; m = 0.1 g; v = 0.001 g^2; m_hat = g, v_hat = g^2 -> p -= lr * g / (|g| + eps).
        Assert.Equal(0.99 - 0.1 * 0.5 / (0.5 + eps), p[0].item<float>(), 6);
        Assert.Equal(-1.98 - 0.1 * 0.1 / (0.1 + eps), p[1].item<float>(), 6);

        SetGrad(p, -0.5f, 0.2f);
        opt.Step();
        var expected = new double[2];
        var start = new[] { 0.99 - 0.1 * 0.5 / (0.5 + eps), -1.98 - 0.1 * 0.1 / (0.1 + eps) };
        for (int i = 0; i < 2; i++)
        {
            double m = b1 * (1 - b1) * g1[i] + (1 - b1) * g2[i];
            double v = b2 * (1 - b2) * g1[i] * g1[i] + (1 - b2) * g2[i] * g2[i];
            double mHat = m / (1 - b1 * b1), vHat = v / (1 - b2 * b2);
            expected[i] = start[i] * (1 - lr * wd) - lr * mHat / (Math.Sqrt(vHat) + eps);
        }
        Assert.Equal(expected[0], p[0].item<float>(), 5);
        Assert.Equal(expected[1], p[1].item<float>(), 5);
    }

    [Fact]
    public void MatchesTorchSharpAdamWWithFp32Moments()
    {
        var rng = new Rng(40);
        var w0 = rng.Randn(3, 4);
        var b0 = rng.Randn(5);
        var mine = new[] { nn.Parameter(w0.clone()), nn.Parameter(b0.clone()) };
        var theirs = new[] { nn.Parameter(w0.clone()), nn.Parameter(b0.clone()) };
        using var opt = new AdamW(mine, lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1);
        var reference = optim.AdamW(theirs, lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1);

        for (int step = 0; step < 6; step++)
        {
            var gw = rng.Randn(3, 4);
            var gb = rng.Randn(5) * 0.01;
            foreach (var ps in new[] { mine, theirs })
            {
                ((ps[0] * gw).sum() + (ps[1] * gb).sum()).backward();
            }
            opt.Step();
            reference.step();
            opt.ZeroGrad();
            reference.zero_grad();
        }

        Assert.True((mine[0] - theirs[0]).abs().max().item<float>() < 1e-6);
        Assert.True((mine[1] - theirs[1]).abs().max().item<float>() < 1e-6);
        Assert.True((mine[0] - w0).abs().max().item<float>() > 1e-2, "the parameters should have moved");
    }

    [Fact]
    public void Bf16MomentsAreStoredInBf16AndTrackTheFp32Run()
    {
        var rng = new Rng(41);
        var w0 = rng.Randn(64);
        var p16 = nn.Parameter(w0.clone());
        var p32 = nn.Parameter(w0.clone());
        using var opt16 = new AdamW([p16], lr: 1e-2, bf16Moments: true);
        using var opt32 = new AdamW([p32], lr: 1e-2);
        var g = rng.Randn(64) * 0.37;

        for (int step = 0; step < 5; step++)
        {
            (p16 * g).sum().backward();
            (p32 * g).sum().backward();
            opt16.Step();
            opt32.Step();
            if (step == 0)
            {
                var m = opt16.StateDict()["0.exp_avg"];
                Assert.Equal(ScalarType.BFloat16, m.dtype);
                // After one step m = 0.1 g, rounded to bf16 once.
                Assert.True((m == (g * 0.1).to(ScalarType.BFloat16)).all().item<bool>());
            }
            opt16.ZeroGrad();
            opt32.ZeroGrad();
        }

        double diff = (p16 - p32).abs().max().item<float>();
        Assert.True(diff < 5 * 1e-2 * 0.01, $"bf16-moment run drifted {diff}");
        Assert.True(diff > 0, "bf16 rounding of the moments should be visible");
    }

    [Fact]
    public void NoDecayNamesSkipWeightDecay()
    {
        var a = Param(2f);
        var b = Param(2f);
        using var opt = new AdamW([("a", a), ("b", b)], lr: 0.1, weightDecay: 0.5, noDecay: ["b"]);
        SetGrad(a, 0f);
        SetGrad(b, 0f);
        opt.Step();
        Assert.Equal(2f * (1 - 0.05f), a.item<float>(), 6);
        Assert.Equal(2f, b.item<float>(), 6);
    }

    [Fact]
    public void StateDictRoundTripResumesTheSameTrajectory()
    {
        var rng = new Rng(42);
        var w0 = rng.Randn(6);
        var grads = Enumerable.Range(0, 5).Select(_ => rng.Randn(6)).ToArray();
        var p1 = nn.Parameter(w0.clone());
        using var opt1 = new AdamW([("w", p1)], lr: 0.05, bf16Moments: true);
        for (int s = 0; s < 3; s++)
        {
            (p1 * grads[s]).sum().backward();
            opt1.Step();
            opt1.ZeroGrad();
        }

        var p2 = nn.Parameter(p1.detach().clone());
        using var opt2 = new AdamW([("w", p2)], lr: 0.05, bf16Moments: true);
        opt2.LoadStateDict(opt1.StateDict());
        for (int s = 3; s < 5; s++)
        {
            foreach (var (p, o) in new[] { (p1, opt1), (p2, opt2) })
            {
                (p * grads[s]).sum().backward();
                o.Step();
                o.ZeroGrad();
            }
        }

        Assert.True((p1 == p2).all().item<bool>());
        Assert.Equal(5L, opt2.StateDict()["w.step"].item<long>());
    }

    [Fact]
    public void LoadStateDictNamesTheBadKey()
    {
        using var opt = new AdamW([("layer.w", Param(1f, 2f))]);
        var state = opt.StateDict();
        state["layer.w.exp_avg"] = zeros(3);
        var ex = Assert.Throws<ArgumentException>(() => opt.LoadStateDict(state));
        Assert.Contains("'layer.w.exp_avg' has shape [3]", ex.Message);
        state.Remove("layer.w.exp_avg_sq");
        state["layer.w.exp_avg"] = zeros(2);
        Assert.Contains("missing 'layer.w.exp_avg_sq'", Assert.Throws<ArgumentException>(() => opt.LoadStateDict(state)).Message);
    }

    [Fact]
    public void StateAliasesShareTheMomentsAndMayBeDisposed()
    {
        var p = Param(1f, -2f);
        using var opt = new AdamW([p], lr: 0.1);
        SetGrad(p, 0.5f, 0.1f);
        opt.Step();
        var copies = opt.StateDict();
        var aliases = ((PostTrain.Core.Precision.IOptimizer)opt).StateAliases();
        Assert.Equal(copies.Keys.Order(), aliases.Keys.Order());
        Assert.Equal(copies["0.exp_avg"].data<float>().ToArray(), aliases["0.exp_avg"].data<float>().ToArray());
        SetGrad(p, -0.5f, 0.2f);
        opt.Step();
        // the aliases see the second step's moments (no copy was made); the copies keep the first step's
        var now = opt.StateDict();
        Assert.Equal(now["0.exp_avg"].data<float>().ToArray(), aliases["0.exp_avg"].data<float>().ToArray());
        Assert.NotEqual(copies["0.exp_avg"].data<float>().ToArray(), aliases["0.exp_avg"].data<float>().ToArray());
        foreach (var t in aliases.Values) t.Dispose();
        SetGrad(p, 0.3f, 0.3f);
        opt.Step();   // the optimizer's own tensors outlive the disposed aliases
        Assert.Equal(2, opt.StateDict()["0.exp_avg"].numel());
    }
}
