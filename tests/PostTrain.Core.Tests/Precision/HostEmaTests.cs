// The host EMA against the recurrence worked out in doubles, its copy being a snapshot (later changes to the weights
// do not leak into an update in flight), and a restore from saved values.
using TorchSharp;
using PostTrain.Core.Precision;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Precision;

public sealed class HostEmaTests
{
    [Fact]
    public void AverageFollowsTheRecurrence()
    {
        const double decay = 0.9;
        var w = tensor(new[] { 1f, -2f, 0.5f });
        using var ema = new HostEma([("w", w)], decay);
        var expected = new[] { 1.0, -2.0, 0.5 };
        var rng = new Random(3);
        for (int step = 1; step <= 5; step++)
        {
            var next = expected.Select(_ => rng.NextDouble() * 4 - 2).ToArray();
            using (no_grad()) w.copy_(tensor(next.Select(x => (float)x).ToArray()));
            for (int i = 0; i < 3; i++) expected[i] = decay * expected[i] + (1 - decay) * (float)next[i];
            ema.Update();
            using (no_grad()) w.fill_(1000f);   // the training thread moves on: the update in flight uses its snapshot
        }
        var got = ema.Values()["w"];
        for (int i = 0; i < 3; i++) Assert.Equal(expected[i], got[i].item<float>(), 5);
        Assert.Equal(5, ema.Updates);
    }

    [Fact]
    public void Bf16WeightsFoldInChunksAcrossTheWholeTensor()
    {
        // more elements than one fold chunk (2^21), bf16 weights as at 16B: every element, the last chunk's too,
        // follows ema = d * w0 + (1 - d) * w1, worked out from the same bf16 values in doubles
        const double decay = 0.75;
        const long n = (1L << 21) + 1000;
        var w = arange(n, dtype: ScalarType.Float32).remainder(97).sub(48).to(ScalarType.BFloat16);
        var w0 = w.to(ScalarType.Float64);
        using var ema = new HostEma([("w", w)], decay);
        Assert.Equal("training thread", ema.CopyMode);
        using (no_grad()) w.mul_(-2).add_(3);
        var w1 = w.to(ScalarType.Float64);
        ema.Update();
        var got = ema.Values()["w"].to(ScalarType.Float64);
        var expected = w0 * decay + w1 * (1 - decay);
        Assert.True(got.allclose(expected, rtol: 1e-6, atol: 1e-5), $"max |diff| {(got - expected).abs().max().item<double>()}");
        Assert.Equal(expected[n - 1].item<double>(), got[n - 1].item<double>(), 5);
    }

    [Fact]
    public void SavedValuesRestore()
    {
        var w = tensor(new[] { 3f, 4f });
        using var a = new HostEma([("w", w)], 0.5);
        using (no_grad()) w.fill_(1f);
        a.Update();                                   // (3, 4) -> (2, 2.5)
        var saved = a.Values().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        Assert.Equal([2f, 2.5f], saved["w"].data<float>().ToArray());
        using var b = new HostEma([("w", w)], 0.5);   // starts at (1, 1)
        b.Load(saved, "test");
        b.Update();                                   // (2, 2.5) -> (1.5, 1.75)
        Assert.Equal([1.5f, 1.75f], b.Values()["w"].data<float>().ToArray());
        Assert.Throws<InvalidDataException>(() => b.Load(new Dictionary<string, Tensor> { ["v"] = saved["w"] }, "test"));
    }

    [Fact]
    public async Task Updates_while_a_fold_runs_are_skipped_and_the_next_fold_takes_their_decay()
    {
        const double d = 0.5;
        var w = tensor(new[] { 8f });
        using var gate = new ManualResetEventSlim(false);
        using var ema = new HostEma([("w", w)], d) { SkipWhenBusy = true, FoldGate = gate };
        using (no_grad()) w.fill_(4f);
        ema.Update();                                          // folds 4 into 8 once the gate opens: 6
        using (no_grad()) w.fill_(100f);
        ema.Update();                                          // the fold is held: skipped, no copy
        ema.Update();                                          // skipped
        Assert.Equal(2, ema.Skipped);
        gate.Set();
        Assert.Equal(6f, ema.Values()["w"].item<float>(), 5);
        using (no_grad()) w.fill_(2f);
        ema.Update();                                          // 3 steps since the last fold: d^3 = 1/8: 6/8 + 2 * 7/8
        Assert.Equal(6.0 / 8 + 2 * 7.0 / 8, ema.Values()["w"].item<float>(), 5);
        Assert.Equal(2, ema.Updates);

        // without SkipWhenBusy an update waits for the held fold instead
        using var gate2 = new ManualResetEventSlim(false);
        using var exact = new HostEma([("w", w)], d) { FoldGate = gate2 };
        exact.Update();
        var second = Task.Run(exact.Update);
        await Task.Delay(200);
        Assert.False(second.IsCompleted, "the second update waits for the held fold");
        gate2.Set();
        await second;
        Assert.Equal(0, exact.Skipped);
        Assert.Equal(2, exact.Updates);
    }
}
