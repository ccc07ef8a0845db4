// Stochastic rounding to bf16 against values worked out by hand: bf16 keeps 8 significant bits, so between 1 and 2
// its numbers are 2^-7 apart; 1 + 2^-10 lies an eighth of the way from 1 to 1 + 2^-7 and must round up one time in
// eight (round to nearest always gives 1). The AdamW update with bf16 parameters and stochastic rounding moves a weight
// by updates far below that spacing, in expectation, where round to nearest loses them all.
using TorchSharp;
using static TorchSharp.torch;
using AdamW = PostTrain.Core.Precision.AdamW;
using StochasticRounding = PostTrain.Core.Precision.StochasticRounding;

namespace PostTrain.Core.Tests.Precision;

public sealed class StochasticRoundingTests
{
    [Fact]
    public void Rounds_up_with_the_probability_of_the_distance_and_only_to_the_two_neighbours()
    {
        using var g = new Generator(7);
        const int n = 200_000;
        foreach (var (x, lo, hi, pUp) in new[]
                 {
                     (1 + Math.Pow(2, -10), 1.0, 1 + Math.Pow(2, -7), 1.0 / 8),
                     (-(1 + 3 * Math.Pow(2, -9)), -(1 + Math.Pow(2, -7)), -1.0, 1.0 / 4),   // 3/4 of the way from -1 down to -(1+2^-7)
                     (3.0 + 0.5 * 0.015625, 3.0, 3.015625, 0.5),                               // spacing 2^-6 between 2 and 4
                 })
        {
            var r = StochasticRounding.ToBf16(full(n, (float)x), g);
            Assert.Equal(ScalarType.BFloat16, r.dtype);
            var f = r.to(ScalarType.Float32);
            Assert.True(((f == (float)lo) | (f == (float)hi)).all().item<bool>(), $"{x}: only the neighbours {lo} and {hi}");
            double up = (f == (float)hi).to(ScalarType.Float64).mean().item<double>();
            // binomial standard error at n = 200,000 is at most 0.0011
            Assert.InRange(up, pUp - 0.006, pUp + 0.006);
            Assert.InRange(f.to(ScalarType.Float64).mean().item<double>(), x - 2e-5, x + 2e-5);
        }
    }

    [Fact]
    public void Representable_infinite_and_nan_values_come_back_unchanged()
    {
        var x = tensor(new[] { 1f, -0.5f, 0f, 3.0f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, 1.5f * (float)Math.Pow(2, -130) });
        for (int i = 0; i < 20; i++)
        {
            var r = StochasticRounding.ToBf16(x).to(ScalarType.Float32);
            Assert.Equal(new[] { 1f, -0.5f, 0f, 3.0f, float.PositiveInfinity, float.NegativeInfinity }, r[..6].data<float>().ToArray());
            Assert.True(float.IsNaN(r[6].item<float>()));
            Assert.Equal(1.5f * (float)Math.Pow(2, -130), r[7].item<float>());   // a subnormal bf16 keeps it exactly
        }
        Assert.Throws<ArgumentException>(() => StochasticRounding.ToBf16(ones(2, dtype: ScalarType.BFloat16)));
    }

    [Fact]
    public void Adamw_with_bf16_parameters_keeps_updates_below_bf16_spacing_in_expectation()
    {
        // constant gradient 1: every AdamW step (no decay) moves each weight by exactly lr (m_hat = 1, v_hat = 1)
        const int n = 65_536, steps = 20;
        const double lr = 1e-4;                           // 2.6% of bf16's spacing at 1.0
        manual_seed(11);
        var sr = nn.Parameter(ones(n, dtype: ScalarType.BFloat16));
        var nearest = nn.Parameter(ones(n, dtype: ScalarType.BFloat16));
        using var optSr = new AdamW([("w", sr)], lr: lr, weightDecay: 0, stochasticRounding: true) { ChunkElements = 10_000 };
        using var optNearest = new AdamW([("w", nearest)], lr: lr, weightDecay: 0);
        for (int s = 0; s < steps; s++)
        {
            foreach (var (p, o) in new[] { (sr, optSr), (nearest, optNearest) })
            {
                p.grad?.zero_();
                p.sum().backward();
                o.Step();
            }
        }
        Assert.Equal(ScalarType.BFloat16, sr.dtype);
        double mean = sr.to(ScalarType.Float64).mean().item<double>();
        // 0.998 in expectation (stochastic rounding is unbiased). Spread: each step's rounding onto bf16's grid below 1
        // (spacing s = 2^-8) adds variance f(1-f)s^2 <= s^2/4, so after 20 steps one weight's standard deviation is at most
        // sqrt(20/4) * 2^-8 = 0.0087 and the mean's over 65,536 weights 0.0087 / 256 = 3.4e-5. The random stream is the
        // global one other tests draw from in parallel, so the bound is five of those (1.7e-4), still 12x below the 0.002
        // that round to nearest loses.
        Assert.InRange(mean, 1 - steps * lr - 1.7e-4, 1 - steps * lr + 1.7e-4);
        Assert.True((nearest == 1).all().item<bool>(), "round to nearest loses every update");
        Assert.Equal(20L, optSr.StateDict()["w.step"].item<long>());
    }

    [Fact]
    public void Stochastic_rounding_refuses_fp32_parameters_and_the_fused_update()
    {
        var p = nn.Parameter(ones(4));
        Assert.Contains("is for bf16 parameters", Assert.Throws<ArgumentException>(() => new AdamW([("w", p)], stochasticRounding: true)).Message);
        var b = nn.Parameter(ones(4, dtype: ScalarType.BFloat16));
        Assert.Throws<ArgumentException>(() => new AdamW([("w", b)], fused: true, stochasticRounding: true));
    }

    [Fact]
    public void A_parameter_without_a_gradient_is_skipped_and_its_step_not_counted()
    {
        var a = nn.Parameter(ones(4, dtype: ScalarType.BFloat16));
        var b = nn.Parameter(ones(4, dtype: ScalarType.BFloat16));
        using var opt = new AdamW([("a", a), ("b", b)], lr: 0.1, weightDecay: 0.5, stochasticRounding: true);
        a.sum().backward();
        opt.Step();
        var state = opt.StateDict();
        Assert.Equal(1L, state["a.step"].item<long>());
        Assert.Equal(0L, state["b.step"].item<long>());
        Assert.True((b == 1).all().item<bool>(), "no gradient, no decay");
        Assert.True((a < 1).all().item<bool>());
    }
}
