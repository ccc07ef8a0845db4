// FastLossStep, the machinery the SFT, reward-model and GRPO fast steps share, on a small regression model (run eagerly
// on the CPU as it is captured on CUDA): micro-batches of two static shapes through Accumulate (one body per shape) and
// one Apply per step equal plain gradient accumulation with the unfused AdamW and grad-norm clipping over several steps
// (losses, norms, weights); Step equals Accumulate + Apply; a non-finite accumulated loss skips the update on the device;
// a key holds one kind of body.
using PostTrain.Core.FastPath;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using AdamW = PostTrain.Core.Precision.AdamW;

namespace PostTrain.Core.Tests.FastPath;

public sealed class FastLossStepTests
{
    private static Sequential Model()
    {
        var g = new Generator(3);
        var m = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1));
        using (no_grad()) foreach (var p in m.parameters()) p.copy_(randn(p.shape, generator: g) * 0.5);
        return m;
    }

    private static AdamW Adam(Sequential m, bool fused) =>
        new(m.named_parameters().Select(p => (p.name, p.parameter)), 1e-2, weightDecay: 0.01, fused: fused);

    [Fact]
    public void AccumulateOverTwoShapesThenApplyEqualsPlainGradientAccumulation()
    {
        var plainModel = Model();
        var fastModel = Model();
        var plainOpt = Adam(plainModel, fused: false);
        using var fast = FastLossStep.Create(fastModel.parameters(), Adam(fastModel, fused: true), CPU, FastPathMode.Auto,
            new FastTrainStepOptions { MaxGradNorm = 0.3, SkipNonFinite = true });
        Assert.StartsWith("eager", fast.Description);
        // static buffers of two shapes (4 rows and 2 rows), as GRPO's length buckets
        var buffers = new[] { 4, 2 }.ToDictionary(n => n, n => (X: zeros(n, 6), Y: zeros(n, 1)));
        Func<Tensor> LossOf(int n) => () => (fastModel.forward(buffers[n].X) - buffers[n].Y).pow(2).sum() / 6.0;
        var gen = new Generator(5);
        for (int step = 0; step < 6; step++)
        {
            var batches = new[] { 4, 2 }.Select(n => (X: randn(n, 6, generator: gen), Y: randn(n, 1, generator: gen))).ToList();
            double lr = 1e-2 * (1 - step / 12.0);
            plainOpt.LearningRate = lr;
            double plainLoss = 0;
            foreach (var (x, y) in batches)
            {
                var l = (plainModel.forward(x) - y).pow(2).sum() / 6.0;
                l.backward();
                plainLoss += l.item<float>();
            }
            double norm = nn.utils.clip_grad_norm_(plainModel.parameters(), 0.3);
            plainOpt.Step();
            plainOpt.ZeroGrad();

            foreach (var (x, y) in batches)
            {
                int n = (int)x.shape[0];
                fast.Accumulate($"rows{n}", () => { buffers[n].X.copy_(x); buffers[n].Y.copy_(y); }, LossOf(n));
            }
            var r = fast.Apply(lr);
            Assert.True(Math.Abs(plainLoss - r.Loss.item<float>()) <= 1e-5 * Math.Abs(plainLoss), $"step {step}: loss {r.Loss.item<float>()} vs {plainLoss}");
            Assert.True(Math.Abs(norm - r.GradNorm!.item<float>()) <= 1e-5 * norm, $"step {step}: norm {r.GradNorm.item<float>()} vs {norm}");
        }
        var a = plainModel.parameters().ToList();
        var b = fastModel.parameters().ToList();
        for (int i = 0; i < a.Count; i++)
            Assert.True((a[i] - b[i]).abs().max().item<float>() < 1e-5, $"parameter {i} differs");
        Assert.True((a[0] - Model().parameters().First()).abs().max().item<float>() > 1e-2, "the weights did not train");
    }

    [Fact]
    public void StepEqualsAccumulateThenApplyAndANonFiniteLossSkipsTheUpdate()
    {
        var m1 = Model();
        var m2 = Model();
        using var one = FastLossStep.Create(m1.parameters(), Adam(m1, true), CPU, FastPathMode.Auto, new FastTrainStepOptions { MaxGradNorm = 1.0, SkipNonFinite = true });
        using var two = FastLossStep.Create(m2.parameters(), Adam(m2, true), CPU, FastPathMode.Auto, new FastTrainStepOptions { MaxGradNorm = 1.0, SkipNonFinite = true });
        var (x1, y1, x2, y2) = (zeros(3, 6), zeros(3, 1), zeros(3, 6), zeros(3, 1));
        var scale = ones(1).squeeze();                                      // a 0-dim factor: the loss stays a scalar
        var gen = new Generator(8);
        for (int step = 0; step < 4; step++)
        {
            var (x, y) = (randn(3, 6, generator: gen), randn(3, 1, generator: gen));
            using (no_grad()) scale.fill_(step == 2 ? double.NaN : 1.0);      // step 2: a non-finite loss
            var before = m1.parameters().Select(p => p.detach().clone()).ToList();
            var r1 = one.Step("s", () => { x1.copy_(x); y1.copy_(y); }, () => (m1.forward(x1) - y1).pow(2).mean() * scale, 1e-2);
            two.Accumulate("s", () => { x2.copy_(x); y2.copy_(y); }, () => (m2.forward(x2) - y2).pow(2).mean() * scale);
            var r2 = two.Apply(1e-2);
            Assert.Equal(r1.Loss.item<float>(), r2.Loss.item<float>());
            bool unchanged = m1.parameters().Zip(before).All(p => p.First.eq(p.Second).all().item<bool>());
            Assert.Equal(step == 2, unchanged);
        }
        foreach (var (p, q) in m1.parameters().Zip(m2.parameters()))
            Assert.True(p.eq(q).all().item<bool>());
        // Step no longer zeroes the gradients (it releases them before the next run), so the two styles cannot mix
        var e = Assert.Throws<InvalidOperationException>(() => one.Accumulate("s", () => { }, () => m1.forward(x1).sum()));
        Assert.Contains("Accumulate after Step", e.Message);
        var e2 = Assert.Throws<InvalidOperationException>(() => two.Step("t", () => { }, () => m2.forward(x2).sum(), 1e-2));
        Assert.Contains("Step after Accumulate", e2.Message);
    }
}
