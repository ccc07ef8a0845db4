// The loss pieces on hand-computed numbers: aggregation (grpo / dapo / dr_grpo, and micro-batch shares adding up to
// the batch loss), the clipped surrogate (token and sequence ratios, clip-higher, clip counters), k3 KL, entropy,
// the completion mask, and DAPO's dynamic sampling loop.
using PostTrain.Training.Grpo;
using static TorchSharp.torch;

namespace PostTrain.Training.Tests.Grpo;

public sealed class LossPiecesTests
{
    private static Tensor T(double[,] v) => tensor(v, dtype: ScalarType.Float64);
    private static Tensor T(double[] v) => tensor(v, dtype: ScalarType.Float64);
    private static double D(Tensor t) => t.to(ScalarType.Float64).item<double>();

    // row 0: losses 1, 2, 3 all counted; row 1: 4 counted, then junk (9) under the mask
    private static readonly double[,] PerToken = { { 1, 2, 3 }, { 4, 9, 9 } };
    private static readonly double[,] Mask = { { 1, 1, 1 }, { 1, 0, 0 } };

    [Theory]
    [InlineData(LossAggregation.SequenceMean, 3.0)]          // (mean(1,2,3) + mean(4)) / 2 = (2 + 4) / 2
    [InlineData(LossAggregation.TokenMean, 2.5)]             // (1 + 2 + 3 + 4) / 4 tokens
    [InlineData(LossAggregation.ConstantNormalizer, 10.0 / 6)] // 10 / (2 sequences * 3 max length)
    public void Aggregation_normalisers(LossAggregation kind, double expected)
    {
        var norm = new LossNormalizer(Sequences: 2, Tokens: 4, MaxCompletionLength: 3);
        Assert.Equal(expected, D(LossAggregator.Aggregate(T(PerToken), T(Mask), kind, norm)), 12);
    }

    [Theory]
    [InlineData(LossAggregation.SequenceMean)]
    [InlineData(LossAggregation.TokenMean)]
    [InlineData(LossAggregation.ConstantNormalizer)]
    public void Micro_batch_shares_add_up_to_the_batch_loss(LossAggregation kind)
    {
        var norm = new LossNormalizer(2, 4, 3);
        var whole = D(LossAggregator.Aggregate(T(PerToken), T(Mask), kind, norm));
        var a = D(LossAggregator.Aggregate(T(PerToken).narrow(0, 0, 1), T(Mask).narrow(0, 0, 1), kind, norm));
        var b = D(LossAggregator.Aggregate(T(PerToken).narrow(0, 1, 1), T(Mask).narrow(0, 1, 1), kind, norm));
        Assert.Equal(whole, a + b, 12);
    }

    [Fact]
    public void Clipped_surrogate_per_token_with_clip_higher()
    {
        // ratios 0.5, 1, 1.5 (log pi_old = 0); eps_low 0.2, eps_high 0.28 -> clip range [0.8, 1.28]
        var logp = T(new[,] { { Math.Log(0.5), 0, Math.Log(1.5) }, { Math.Log(0.5), 0, Math.Log(1.5) } });
        var old = zeros(2, 3, dtype: ScalarType.Float64);
        var adv = T([1.0, -1.0]);
        var mask = ones(2, 3, dtype: ScalarType.Float64);
        var s = PolicyLoss.Clipped(logp, old, adv, mask, 0.2, 0.28, ImportanceLevel.Token);
        // A = +1: -min(r, clip(r)) = -0.5, -1, -1.28;  A = -1: -min(-r, -clip(r)) = max(r, clip(r)) = 0.8, 1, 1.5
        double[] expected = [-0.5, -1, -1.28, 0.8, 1, 1.5];
        var got = s.PerToken.reshape(-1).data<double>().ToArray();
        for (int i = 0; i < 6; i++) Assert.Equal(expected[i], got[i], 12);
        Assert.Equal([false, false, true, false, false, false], s.HighClipped.reshape(-1).data<bool>().ToArray());
        Assert.Equal([false, false, false, true, false, false], s.LowClipped.reshape(-1).data<bool>().ToArray());
    }

    [Fact]
    public void Sequence_level_ratio_is_exp_of_the_mean_masked_log_ratio()
    {
        // row 0: log-ratios ln 2 and 0 -> exp(ln 2 / 2) = sqrt 2 on both tokens; row 1: second token masked -> ratio 2
        var logp = T(new[,] { { Math.Log(2), 0 }, { Math.Log(2), 5 } });
        var old = zeros(2, 2, dtype: ScalarType.Float64);
        var mask = T(new double[,] { { 1, 1 }, { 1, 0 } });
        var s = PolicyLoss.Clipped(logp, old, T([1.0, 1.0]), mask, 10, 10, ImportanceLevel.Sequence);
        var r = s.Ratio.reshape(-1).data<double>().ToArray();
        Assert.Equal(Math.Sqrt(2), r[0], 12);
        Assert.Equal(Math.Sqrt(2), r[1], 12);
        Assert.Equal(2, r[2], 12);
        Assert.Equal(-Math.Sqrt(2), s.PerToken[0, 0].item<double>(), 12);
    }

    [Fact]
    public void K3_kl_matches_the_closed_form_and_is_zero_at_equal_policies()
    {
        // log pi = ln 0.5, log pi_ref = ln 0.25: d = ln 0.5 -> 0.5 - ln 0.5 - 1 = 0.193147
        var kl = KlPenalty.K3(T([Math.Log(0.5), Math.Log(0.3)]), T([Math.Log(0.25), Math.Log(0.3)]));
        Assert.Equal(0.5 + Math.Log(2) - 1, kl[0].item<double>(), 12);
        Assert.Equal(0, kl[1].item<double>(), 12);
    }

    [Fact]
    public void Entropy_of_uniform_and_skewed_distributions()
    {
        // [0, 0] -> ln 2; [0, ln 3] -> p = (1/4, 3/4) -> 0.25 ln 4 + 0.75 ln(4/3) = 0.562335
        var h = Entropy.FromLogits(T(new[,] { { 0, 0 }, { 0, Math.Log(3) } }));
        Assert.Equal(Math.Log(2), h[0].item<double>(), 12);
        Assert.Equal(0.562335, h[1].item<double>(), 6);
        Assert.Equal(2.5, D(Entropy.MaskedMean(T(PerToken), T(Mask))), 12);   // (1+2+3+4)/4
    }

    [Fact]
    public void Completion_mask_covers_each_completion_and_drops_truncated_ones_when_asked()
    {
        int[] lengths = [3, 1, 2];
        bool[] truncated = [true, false, false];
        var kept = CompletionMask.Build(lengths, truncated, 3, maskTruncated: false);
        Assert.Equal([1f, 1, 1, 1, 0, 0, 1, 1, 0], kept.reshape(-1).data<float>().ToArray());
        var masked = CompletionMask.Build(lengths, truncated, 3, maskTruncated: true);
        Assert.Equal([0f, 0, 0, 1, 0, 0, 1, 1, 0], masked.reshape(-1).data<float>().ToArray());
    }

    [Fact]
    public void Dynamic_sampling_keeps_informative_groups_until_the_batch_is_full()
    {
        Assert.True(DynamicSampling.IsInformative([0, 1, 0]));
        Assert.False(DynamicSampling.IsInformative([0.5, 0.5, 0.5]));
        double[][][] rounds =
        [
            [[1, 0], [1, 1], [0, 0]],      // round 0: one informative group
            [[0, 0], [0, 1], [1, 0]],      // round 1: two more, only one is needed
            [[0, 1], [0, 1], [0, 1]],
        ];
        var (groups, used) = DynamicSampling.Collect(r => rounds[r], g => DynamicSampling.IsInformative(g), wanted: 2, maxRounds: 3);
        Assert.Equal(2, used);
        Assert.Equal([rounds[0][0], rounds[1][1]], groups);
    }

    [Fact]
    public void Dynamic_sampling_stops_at_the_round_limit()
    {
        double[][] flat = [[1, 1], [0, 0]];
        int calls = 0;
        var (none, used) = DynamicSampling.Collect(_ => { calls++; return flat; }, g => DynamicSampling.IsInformative(g), 2, 3);
        Assert.Equal(3, used);
        Assert.Equal(3, calls);
        Assert.Equal(flat, none);   // nothing informative: the last round as it is

        double[][][] rounds = [[[1, 0], [0, 0]], [[0, 0], [1, 1]]];
        var (some, _) = DynamicSampling.Collect(r => rounds[r], g => DynamicSampling.IsInformative(g), 2, 2);
        Assert.Equal([rounds[0][0]], some);   // fewer than wanted, but only informative ones
    }
}
