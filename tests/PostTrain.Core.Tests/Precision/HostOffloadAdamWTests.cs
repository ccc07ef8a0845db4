// The host-offloaded AdamW against the on-device AdamW: the same values over several steps (fp32 parameters), bf16
// device parameters equal to the bf16 rounding of fp32 masters that follow the reference exactly, weight-decay
// exclusion, bf16 moments, and an exact resume from its state (masters included).
using TorchSharp;
using TorchSharp.Modules;
using PostTrain.Core.Precision;
using static TorchSharp.torch;
using AdamW = PostTrain.Core.Precision.AdamW;

namespace PostTrain.Core.Tests.Precision;

public sealed class HostOffloadAdamWTests
{
    private static (string, Parameter)[] Params(Tensor w0, Tensor b0, ScalarType dtype) =>
        [("layer.weight", nn.Parameter(w0.to(dtype).clone())), ("layer.norm.weight", nn.Parameter(b0.to(dtype).clone()))];

    // Sets each parameter's gradient to the given values (in the parameter's dtype).
    private static void SetGrads((string, Parameter)[] ps, Tensor[] grads)
    {
        foreach (var ((_, p), g) in ps.Zip(grads))
        {
            p.grad?.zero_();
            (p * g.to(p.dtype)).sum().backward();
        }
    }

    private static Tensor[] Grads(Rng rng) => [rng.Randn(6, 5), rng.Randn(5)];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void StepsEqualTheOnDeviceAdamW(bool bf16Moments)
    {
        var rng = new Rng(11);
        var w0 = rng.Randn(6, 5);
        var b0 = rng.Randn(5);
        var mine = Params(w0, b0, ScalarType.Float32);
        var theirs = Params(w0, b0, ScalarType.Float32);
        using var offload = new HostOffloadAdamW(mine, 1e-2, 0.9, 0.95, 1e-8, 0.1, bf16Moments, noDecay: ["layer.norm.weight"]);
        using var reference = new AdamW(theirs, 1e-2, 0.9, 0.95, 1e-8, 0.1, bf16Moments, noDecay: ["layer.norm.weight"]);
        for (int step = 0; step < 4; step++)
        {
            var g = Grads(rng);
            SetGrads(mine, g);
            SetGrads(theirs, g);
            offload.LearningRate = reference.LearningRate = 1e-2 * (step + 1);
            offload.Step();
            reference.Step();
            foreach (var ((n, a), (_, b)) in mine.Zip(theirs))
                Assert.True(a.allclose(b, rtol: 0, atol: 1e-7), $"{n} differs at step {step + 1}");
        }
        Assert.False(mine[0].Item2.allclose(w0), "the parameters moved");
    }

    [Fact]
    public void Bf16DeviceParametersAreTheRoundedFp32Masters()
    {
        var rng = new Rng(12);
        var w0 = rng.Randn(6, 5).to(ScalarType.BFloat16).to(ScalarType.Float32);   // bf16-exact start
        var b0 = rng.Randn(5).to(ScalarType.BFloat16).to(ScalarType.Float32);
        var device = Params(w0, b0, ScalarType.BFloat16);
        var masters = Params(w0, b0, ScalarType.Float32);
        using var offload = new HostOffloadAdamW(device, 1e-3, 0.9, 0.95, 1e-8, 0.1);
        using var reference = new AdamW(masters, 1e-3, 0.9, 0.95, 1e-8, 0.1);
        for (int step = 0; step < 5; step++)
        {
            var g = Grads(rng).Select(t => t.to(ScalarType.BFloat16).to(ScalarType.Float32)).ToArray();   // what a bf16 backward gives
            SetGrads(device, g);
            SetGrads(masters, g);
            offload.Step();
            reference.Step();
        }
        var state = offload.StateDict();
        foreach (var ((n, d), (_, m)) in device.Zip(masters))
        {
            Assert.Equal(ScalarType.BFloat16, d.dtype);
            Assert.True(state[n + ".master"].allclose(m, rtol: 0, atol: 1e-7), $"{n}: the host master follows fp32 AdamW");
            Assert.True(d.eq(m.to(ScalarType.BFloat16)).all().item<bool>(), $"{n}: the device copy is the master rounded to bf16");
        }
        // updates of 1e-3 are below bf16's resolution near 1: only the fp32 masters keep them
        Assert.False(masters[0].Item2.to(ScalarType.BFloat16).to(ScalarType.Float32).allclose(masters[0].Item2, rtol: 0, atol: 0));
    }

    [Fact]
    public void ResumeFromItsStateIsExact()
    {
        var rng = new Rng(13);
        var w0 = rng.Randn(6, 5);
        var b0 = rng.Randn(5);
        var grads = Enumerable.Range(0, 4).Select(_ => Grads(rng)).ToArray();
        var straight = Params(w0, b0, ScalarType.BFloat16);
        using var a = new HostOffloadAdamW(straight, 1e-2, 0.9, 0.95, 1e-8, 0.1, bf16Moments: true);
        for (int s = 0; s < 4; s++) { SetGrads(straight, grads[s]); a.Step(); }

        var first = Params(w0, b0, ScalarType.BFloat16);
        Dictionary<string, Tensor> saved;
        using (var b = new HostOffloadAdamW(first, 1e-2, 0.9, 0.95, 1e-8, 0.1, bf16Moments: true))
        {
            for (int s = 0; s < 2; s++) { SetGrads(first, grads[s]); b.Step(); }
            saved = b.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        }
        var resumed = Params(rng.Randn(6, 5), rng.Randn(5), ScalarType.BFloat16);   // other values: the state restores them
        using var c = new HostOffloadAdamW(resumed, 1e-2, 0.9, 0.95, 1e-8, 0.1, bf16Moments: true);
        c.LoadStateDict(saved);
        for (int s = 2; s < 4; s++) { SetGrads(resumed, grads[s]); c.Step(); }
        foreach (var ((n, x), (_, y)) in straight.Zip(resumed))
            Assert.True(x.eq(y).all().item<bool>(), n);
        var sa = a.StateDict();
        var sc = c.StateDict();
        foreach (var key in sa.Keys) Assert.True(sa[key].eq(sc[key]).all().item<bool>(), key);
    }
}
