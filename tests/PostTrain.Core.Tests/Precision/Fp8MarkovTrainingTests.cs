// DeepSeek-V3's FP8 bar (FP8 training loss within 0.25% of BF16 from the same init on the same data) at CPU scale:
// a 2-layer MLP learns the next-symbol distribution of a random order-2 Markov chain over 16 symbols (256 contexts,
// fresh samples every step) with FP8 LinearOps (emulated: real E4M3 values, 1x128 / 128x128 scales, all three GEMMs)
// and with BF16 LinearOps. Learning a chain's statistics has no sudden skill jumps, so the two loss curves stay
// together (the GPU benchmark on Markov text: 0.03%, `benchmarks/run-gpu.sh quality`); on the toy regression of
// Fp8TrainingTests the spread between seeds alone is up to 0.55%, which is why that test's bound is 1%. Measured here
// (300 steps, lr 1e-2, mean of the last 50 losses; the chain's entropy rate is 1.36): seeds 3, 5, 9 gave 0.117%,
// 0.059%, 0.070%.
using PostTrain.Core.Precision;
using TorchSharp;
using static TorchSharp.torch;
using P = PostTrain.Core.Precision.Precision;

namespace PostTrain.Core.Tests.Precision;

public sealed class Fp8MarkovTrainingTests
{
    private const int V = 16, Hidden = 192, Batch = 256, Steps = 300, Tail = 50;

    private static (double First, double Final, double Floor) Train(P p)
    {
        var rng = new Rng(3);
        using var sampler = new Generator(4);
        var table = nn.functional.softmax(rng.Randn(V * V, V) * 2.5, 1);                    // (256 contexts, 16)
        var ctx = randint(0, V * V, [Steps, Batch], generator: sampler);                       // (S, B)
        var next = multinomial(table.index_select(0, ctx.flatten()), 1, generator: sampler).view(Steps, Batch);
        var x = cat([nn.functional.one_hot(ctx.div(V, RoundingMode.floor), V), nn.functional.one_hot(ctx % V, V)], -1).to(ScalarType.Float32);  // (S, B, 32)
        double floor = (-(table * table.log()).sum(1)).mean().item<float>();                   // the chain's entropy rate

        var losses = TwoLayerTrainer.Train(rng, x, Hidden, V, 1e-2, p, (logits, s) => nn.functional.cross_entropy(logits, next[s]));
        return (losses.Take(5).Average(), losses.Skip(Steps - Tail).Average(), floor);
    }

    [Fact]
    public void Fp8LossStaysWithinAQuarterPercentOfBf16OnMarkovText()
    {
        var bf16 = Train(P.Bf16);
        var fp8 = Train(P.Fp8);

        // both learn most of what there is to learn: from ln 16 = 2.77 towards the entropy rate
        Assert.True(bf16.Final - bf16.Floor < 0.5 * (bf16.First - bf16.Floor), $"BF16 did not learn: {bf16.First} -> {bf16.Final} (floor {bf16.Floor})");
        Assert.True(fp8.Final - fp8.Floor < 0.5 * (fp8.First - fp8.Floor), $"FP8 did not learn: {fp8.First} -> {fp8.Final} (floor {fp8.Floor})");
        double rel = Math.Abs(fp8.Final - bf16.Final) / bf16.Final;
        Assert.True(rel < 0.0025, $"FP8 loss (mean of the last {Tail} steps) {fp8.Final} vs BF16 {bf16.Final}: {rel:P3}");
        Assert.NotEqual(bf16.Final, fp8.Final);                                                  // the FP8 path really quantises
    }
}
