// Quantise/dequantise round trips against E4M3 values worked out by hand (normal, subnormal, ties,
// saturation at 448, zeros), padding of odd shapes, and 128x128 weight blocks.
using PostTrain.Core.Precision;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Precision;

public sealed class Fp8QuantizeTests
{
    private static float[] Row(Tensor t) => t.to(ScalarType.Float32).contiguous().data<float>().ToArray();

    [Fact]
    public void TileWithAmax448HasScaleOneAndRoundsToE4M3ByHand()
    {
        // amax = 448 -> scale exactly 1, so q is E4M3 rounding of the value itself.
        float sub = MathF.Pow(2, -9);                     // smallest E4M3 subnormal
        var input = new float[] { 448f, 1.0625f, 17f, 300f, 440f, sub, 3 * sub, MathF.Pow(2, -10), 1.5f * sub, -3.3f, 0f };
        var expected = new float[] { 448f, 1f, 16f, 288f, 448f, sub, 3 * sub, 0f, 2 * sub, -3.25f, 0f };
        //  1.0625 ties between 1 and 1.125 -> even mantissa 1; 17 ties between 16 and 18 -> 16; 300 -> 288 (step 32);
        //  440 -> 448 (nearer than 416); 2^-10 ties between 0 and 2^-9 -> 0; 1.5*2^-9 ties -> 2*2^-9 (even); -3.3 -> -3.25.
        var x = zeros(1, 128);
        x[0, ..input.Length] = tensor(input);

        var (q, scale) = Fp8.QuantizeActTiles(x);

        Assert.Equal(Fp8.Float8E4M3, q.dtype);
        Assert.Equal([1L, 128L], q.shape);
        Assert.Equal(1f, scale.item<float>());
        Assert.Equal(expected, Row(q)[..input.Length]);
        Assert.Equal(expected, Row(Fp8.DequantizeActTiles(q, scale, 128))[..input.Length]);
    }

    [Fact]
    public void TileIsScaledByAmaxOver448()
    {
        // amax 896 -> scale 2: 896 -> 448, 3 -> 1.5 (exact), 35 -> 17.5 -> 18 (step 2 in [16, 32)) -> 36, -0.7 -> -0.35 -> -0.34375.
        var x = zeros(1, 128);
        x[0, ..4] = tensor(new float[] { 896f, 3f, 35f, -0.7f });

        var (q, scale) = Fp8.QuantizeActTiles(x);

        Assert.Equal(2f, scale.item<float>());
        Assert.Equal(new float[] { 448f, 1.5f, 18f, -0.34375f }, Row(q)[..4]);
        Assert.Equal(new float[] { 896f, 3f, 36f, -0.6875f }, Row(Fp8.DequantizeActTiles(q, scale, 128))[..4]);
    }

    [Fact]
    public void ValuesAtAmaxSaturateAt448InsteadOfOverflowingToNaN()
    {
        // 1000/448 is not exact in FP32, so 1000/scale lands a rounding step away from 448; E4M3 casts overflow to NaN.
        var x = zeros(3, 128);
        x[0, 0] = tensor(1000f);
        x[1, 5] = tensor(-123.456f);
        x[2, 7] = tensor(3.0e-3f);

        var (q, scale) = Fp8.QuantizeActTiles(x);
        var back = Fp8.DequantizeActTiles(q, scale, 128);

        Assert.False(q.to(ScalarType.Float32).isnan().any().item<bool>());
        Assert.Equal(new float[] { 448f, -448f, 448f }, new[] { q[0, 0], q[1, 5], q[2, 7] }.Select(t => t.to(ScalarType.Float32).item<float>()));
        Assert.Equal(1000f, back[0, 0].item<float>(), 3);
        Assert.Equal(-123.456f, back[1, 5].item<float>(), 4);
        Assert.Equal(3.0e-3f, back[2, 7].item<float>(), 7);
    }

    [Fact]
    public void AllZeroTilesGetScaleOneAndDequantiseToExactZeros()
    {
        // Row 0: first tile zeros, second tile non-zero; row 1: all zeros.
        var x = zeros(2, 256);
        x[0, 200] = tensor(5f);

        var (q, scale) = Fp8.QuantizeActTiles(x);
        var back = Fp8.DequantizeActTiles(q, scale, 256);

        Assert.Equal(new float[] { 1f, 5f / 448f, 1f, 1f }, Row(scale));
        Assert.False(back.isnan().any().item<bool>());
        Assert.Equal(0f, back[0, ..128].abs().sum().item<float>());
        Assert.Equal(0f, back[1].abs().sum().item<float>());
        Assert.Equal(5f, back[0, 200].item<float>(), 5);
    }

    [Fact]
    public void OddWidthIsZeroPaddedToAMultipleOf128AndTrimmedBack()
    {
        var rng = new Rng(1);
        var x = rng.Randn(5, 200) * 3;                        // K = 200 -> Kp = 256

        var (q, scale) = Fp8.QuantizeActTiles(x);
        var back = Fp8.DequantizeActTiles(q, scale, 200);

        Assert.Equal([5L, 256L], q.shape);
        Assert.Equal([5L, 2L], scale.shape);
        Assert.Equal(0f, q[.., 200..].to(ScalarType.Float32).abs().sum().item<float>());
        Assert.Equal([5L, 200L], back.shape);
        AssertWithinE4M3Rounding(x, back, scale.repeat_interleave(128, 1)[.., ..200]);
    }

    [Fact]
    public void WeightBlocksUseOneScalePer128x128BlockAndPadOddShapes()
    {
        var rng = new Rng(2);
        var w = rng.Randn(130, 260);                         // -> (256, 384), 2 x 3 blocks
        w[129, 259] = tensor(-44.8f);                    // amax of block (1, 2) -> scale 0.1
        w[3, 3] = tensor(89.6f);                         // amax of block (0, 0) -> scale 0.2

        var (q, scale) = Fp8.QuantizeWeightBlocks(w);
        var back = Fp8.DequantizeWeightBlocks(q, scale, 130, 260);

        Assert.Equal([256L, 384L], q.shape);
        Assert.Equal([2L, 3L], scale.shape);
        Assert.Equal(0.2f, scale[0, 0].item<float>(), 6);
        Assert.Equal(0.1f, scale[1, 2].item<float>(), 6);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
            {
                var block = w[(i * 128)..Math.Min(130, (i + 1) * 128), (j * 128)..Math.Min(260, (j + 1) * 128)];
                Assert.Equal(block.abs().max().item<float>() / 448f, scale[i, j].item<float>(), 6);
            }
        Assert.Equal(-448f, q[129, 259].to(ScalarType.Float32).item<float>());
        Assert.Equal(0f, q[130.., ..].to(ScalarType.Float32).abs().sum().item<float>());
        var perElementScale = scale.repeat_interleave(128, 0).repeat_interleave(128, 1)[..130, ..260];
        AssertWithinE4M3Rounding(w, back, perElementScale);
    }

    [Fact]
    public void BatchedWeightBlocksQuantiseEachExpertSeparately()
    {
        var rng = new Rng(3);
        var w = rng.Randn(3, 72, 136);                       // N = 72 is padded per expert, blocks never straddle experts
        w[1] *= 100;

        var (q, scale) = Fp8.QuantizeWeightBlocks(w);

        Assert.Equal([3L, 128L, 256L], q.shape);
        Assert.Equal([3L, 1L, 2L], scale.shape);
        for (int e = 0; e < 3; e++)
        {
            var (qe, se) = Fp8.QuantizeWeightBlocks(w[e]);
            Assert.True((qe.to(ScalarType.Float32) == q[e].to(ScalarType.Float32)).all().item<bool>());
            Assert.True((se == scale[e]).all().item<bool>());
        }
        var back = Fp8.DequantizeWeightBlocks(q, scale, 72, 136);
        Assert.Equal([3L, 72L, 136L], back.shape);
    }

    [Fact]
    public void BadShapesAreRejectedWithTheirShape()
    {
        var ex = Assert.Throws<ArgumentException>(() => Fp8.QuantizeActTiles(zeros(2, 3, 4)));
        Assert.Contains("[2, 3, 4]", ex.Message);
        var (q, s) = Fp8.QuantizeActTiles(zeros(2, 128));
        Assert.Throws<ArgumentException>(() => Fp8.DequantizeActTiles(q, s[.., ..0], 128));
    }

    // E4M3 has 3 mantissa bits: a normal value rounds within 2^-4 of itself (relative); below 2^-6 the subnormal
    // grid step is 2^-9, so the error is at most 2^-10 in units of the scale.
    private static void AssertWithinE4M3Rounding(Tensor original, Tensor back, Tensor scale)
    {
        var bound = maximum(original.abs() * MathF.Pow(2, -4), scale * MathF.Pow(2, -10)) * 1.0001f;
        var err = (back - original).abs();
        Assert.True((err <= bound).all().item<bool>(), $"max excess {(err - bound).max().item<float>()}");
        Assert.True(err.max().item<float>() > 0, "quantisation should not be lossless on random data");
    }
}
