// Rollout correction weights and the rollout/trainer mismatch metrics on hand-computed numbers, and a GRPO run on the
// CPU in fp32, where the sampler's log-probs equal the trainer's (the mismatch is ~0 and tis weights are 1).
using System.Text.Json;
using PostTrain.Training.Grpo;
using static TorchSharp.torch;

namespace PostTrain.Training.Tests.Grpo;

public sealed class RolloutCorrectionTests
{
    private static Tensor T(double[,] v) => tensor(v, dtype: ScalarType.Float64);
    private static double[] Flat(Tensor t) => t.reshape(-1).to(ScalarType.Float64).data<double>().ToArray();

    // ratios pi_old / pi_rollout: row 0: 1, 3, 0.25 (all real tokens); row 1: 1.5 then padding (ratio 9 under the mask)
    private static readonly Tensor Old = T(new[,] { { 0.0, Math.Log(3), Math.Log(0.25) }, { Math.Log(1.5), Math.Log(9), 0 } });
    private static readonly Tensor Rollout = zeros(2, 3, dtype: ScalarType.Float64);
    private static readonly Tensor Mask = T(new double[,] { { 1, 1, 1 }, { 1, 0, 0 } });

    [Fact]
    public void Token_tis_truncates_ratios_at_the_cap_and_zeroes_padding()
    {
        var w = RolloutCorrection.Weights(Old, Rollout, Mask, RolloutCorrectionMode.Tis, 2.0, ImportanceLevel.Token);
        Assert.Equal([1, 2, 0.25, 1.5, 0, 0], Flat(w), new Tol(1e-12));
    }

    [Fact]
    public void Token_mis_drops_tokens_outside_one_over_cap_to_cap()
    {
        var w = RolloutCorrection.Weights(Old, Rollout, Mask, RolloutCorrectionMode.Mis, 2.0, ImportanceLevel.Token);
        Assert.Equal([1, 0, 0, 1, 0, 0], Flat(w), new Tol(0));
    }

    [Fact]
    public void Sequence_level_uses_the_geometric_mean_of_the_sequence_token_ratios()
    {
        // row 0: (1 * 3 * 0.25)^(1/3) = 0.75^(1/3) = 0.9086; row 1: 1.5 (the padded 9 does not count)
        double g = Math.Pow(0.75, 1.0 / 3);
        var tis = RolloutCorrection.Weights(Old, Rollout, Mask, RolloutCorrectionMode.Tis, 1.2, ImportanceLevel.Sequence);
        Assert.Equal([g, g, g, 1.2, 0, 0], Flat(tis), new Tol(1e-12));
        var mis = RolloutCorrection.Weights(Old, Rollout, Mask, RolloutCorrectionMode.Mis, 1.2, ImportanceLevel.Sequence);
        Assert.Equal([1, 1, 1, 0, 0, 0], Flat(mis), new Tol(0));   // 0.909 inside [1/1.2, 1.2], 1.5 outside
    }

    [Fact]
    public void None_weights_are_the_mask()
    {
        var w = RolloutCorrection.Weights(Old, Rollout, Mask, RolloutCorrectionMode.None, 2.0, ImportanceLevel.Token);
        Assert.Equal(Flat(Mask), Flat(w));
    }

    [Fact]
    public void Mismatch_stats_over_the_completion_tokens()
    {
        // deltas on real tokens: 0, ln 3, ln 0.25, ln 1.5; k3 = e^d - 1 - d
        double[] d = [0, Math.Log(3), Math.Log(0.25), Math.Log(1.5)];
        var stats = MismatchStats.Combine([Flat(MismatchStats.Partial(Old, Rollout, Mask))]);
        Assert.Equal(d.Select(Math.Abs).Average(), stats.AbsMean, 12);
        Assert.Equal(Math.Log(4), stats.AbsMax, 12);
        Assert.Equal(d.Select(x => Math.Exp(x) - 1 - x).Average(), stats.K3, 12);
        Assert.Equal(0.75, stats.FracOver01, 12);
        Assert.Equal(4, stats.Tokens);
        // micro-batches combine to the whole
        var parts = new[] { 0, 1 }.Select(i => Flat(MismatchStats.Partial(Old.narrow(0, i, 1), Rollout.narrow(0, i, 1), Mask.narrow(0, i, 1))));
        Assert.Equal(stats, MismatchStats.Combine(parts));
    }

    private sealed class Tol(double tol) : IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) <= tol;
        public int GetHashCode(double x) => 0;
    }
}
