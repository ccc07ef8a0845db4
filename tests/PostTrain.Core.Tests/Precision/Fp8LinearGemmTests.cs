// The three GEMMs of the FP8 linear layer (forward, Dgrad, Wgrad) against a float64 product of the
// dequantised operands the DeepSeek-V3 recipe prescribes, on non-square shapes with K, N not divisible by 128.
using PostTrain.Core.Precision;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Precision;

public sealed class Fp8LinearGemmTests
{
    private const long M = 200, K = 260, N = 136;

    private static (Tensor x, Tensor w, Tensor dy) Inputs(int seed)
    {
        var rng = new Rng((ulong)seed);
        var x = rng.Randn(M, K);
        x[.., 7] *= 40;                                   // an outlier channel, as real activations have
        var w = rng.Randn(N, K) * 0.05;
        var dy = rng.Randn(M, N) * 1e-3;
        return (x, w, dy);
    }

    private static Tensor F64(Tensor t) => t.to(ScalarType.Float64);

    private static double RelMaxErr(Tensor actual, Tensor reference) =>
        (F64(actual) - reference).abs().max().item<double>() / reference.abs().max().item<double>();

    [Fact]
    public void ForwardIsTheFloat64ProductOfTileQuantisedXAndBlockQuantisedW()
    {
        var (x, w, _) = Inputs(10);

        var y = LinearOps.Linear(x, w, null, PostTrain.Core.Precision.Precision.Fp8);

        var (qx, sx) = Fp8.QuantizeActTiles(x);
        var (qw, sw) = Fp8.QuantizeWeightBlocks(w);
        var reference = F64(Fp8.DequantizeActTiles(qx, sx, K)).mm(F64(Fp8.DequantizeWeightBlocks(qw, sw, N, K)).t());
        Assert.Equal([M, N], y.shape);
        Assert.True(RelMaxErr(y, reference) < 1e-5, $"forward error {RelMaxErr(y, reference)}");
    }

    [Fact]
    public void DgradAndWgradFollowTheRecipesQuantisationOfEachOperand()
    {
        var (x0, w0, dy) = Inputs(11);
        var x = x0.clone().requires_grad_(true);
        var w = nn.Parameter(w0.clone());
        var b = nn.Parameter(new Rng(99).Randn(N));

        var y = LinearOps.Linear(x, w, b, PostTrain.Core.Precision.Precision.Fp8);
        y.backward([dy]);

        // Dgrad: dY per 1x128 along N, W per 128x128 block (W^T's blocks are W's blocks transposed).
        var (qdy, sdy) = Fp8.QuantizeActTiles(dy);
        var (qw, sw) = Fp8.QuantizeWeightBlocks(w0);
        var dxRef = F64(Fp8.DequantizeActTiles(qdy, sdy, N)).mm(F64(Fp8.DequantizeWeightBlocks(qw, sw, N, K)));
        Assert.True(RelMaxErr(x.grad!, dxRef) < 1e-5, $"dgrad error {RelMaxErr(x.grad!, dxRef)}");

        // Wgrad: dY^T and the forward's FP8 copy of X (dequantised, transposed), both per 1x128 along the tokens.
        var (qx, sx) = Fp8.QuantizeActTiles(x0);
        var xSaved = Fp8.DequantizeActTiles(qx, sx, K);                       // (M, K) what the forward kept
        var (qdyT, sdyT) = Fp8.QuantizeActTiles(dy.t());                     // (N, Mp)
        var (qxT, sxT) = Fp8.QuantizeActTiles(xSaved.t());                   // (K, Mp)
        var dwRef = F64(Fp8.DequantizeActTiles(qdyT, sdyT, M)).mm(F64(Fp8.DequantizeActTiles(qxT, sxT, M)).t());
        Assert.True(RelMaxErr(w.grad!, dwRef) < 1e-5, $"wgrad error {RelMaxErr(w.grad!, dwRef)}");

        // The bias gradient is not a GEMM and stays exact.
        Assert.True(RelMaxErr(b.grad!, F64(dy).sum(dim: 0)) < 1e-6);
    }

    [Fact]
    public void WgradUsesTheSavedFp8ActivationsNotTheFp32Input()
    {
        // With X quantised along K in the forward, re-quantising along M cannot give the same dW as quantising
        // the FP32 X along M directly; the recipe's (saved FP8) version is the one expected.
        var (x0, w0, dy) = Inputs(12);
        var w = nn.Parameter(w0.clone());
        LinearOps.Linear(x0, w, null, PostTrain.Core.Precision.Precision.Fp8).backward([dy]);

        var (qdyT, sdyT) = Fp8.QuantizeActTiles(dy.t());
        var (qxT, sxT) = Fp8.QuantizeActTiles(x0.t());                        // from FP32 X: not the recipe
        var fromFp32 = F64(Fp8.DequantizeActTiles(qdyT, sdyT, M)).mm(F64(Fp8.DequantizeActTiles(qxT, sxT, M)).t());
        Assert.True(RelMaxErr(w.grad!, fromFp32) > 1e-4, "dW should carry the forward's quantisation of X");
    }

    [Fact]
    public void LeadingDimensionsAreFlattenedAndRestored()
    {
        var (x, w, _) = Inputs(13);
        var x3 = x[..198].reshape(2, 99, K);

        var y3 = LinearOps.Linear(x3, w, null, PostTrain.Core.Precision.Precision.Fp8);
        var y2 = LinearOps.Linear(x[..198], w, null, PostTrain.Core.Precision.Precision.Fp8);

        Assert.Equal([2L, 99L, N], y3.shape);
        Assert.True((y3.reshape(198, N) == y2).all().item<bool>());
    }

    [Fact]
    public void GemmWithTileScaledBOperandTrimsPaddingAndMatchesFloat64()
    {
        var rng = new Rng(14);
        var a = rng.Randn(70, 300);
        var b = rng.Randn(50, 300) * 7;
        var (qa, sa) = Fp8.QuantizeActTiles(a);
        var (qb, sb) = Fp8.QuantizeActTiles(b);

        var c = Fp8Gemm.Multiply(qa, sa, qb, sb, Fp8Layout.Tiles1x128, 70, 50);

        var reference = F64(Fp8.DequantizeActTiles(qa, sa, 300)).mm(F64(Fp8.DequantizeActTiles(qb, sb, 300)).t());
        Assert.Equal([70L, 50L], c.shape);
        Assert.True(RelMaxErr(c, reference) < 1e-5);
        Assert.Throws<ArgumentException>(() => Fp8Gemm.Multiply(qa, sa, qb[.., ..128], sb[.., ..1], Fp8Layout.Tiles1x128, 70, 50));
    }

    [Fact]
    public void BadLinearShapesNameTheTensor()
    {
        var ex = Assert.Throws<ArgumentException>(() => LinearOps.Linear(zeros(4, 10), zeros(3, 11), null, PostTrain.Core.Precision.Precision.Fp8));
        Assert.Contains("in-features 11", ex.Message);
        Assert.Throws<ArgumentException>(() => LinearOps.Linear(zeros(4, 10), zeros(3, 10), zeros(4), PostTrain.Core.Precision.Precision.Bf16));
    }
}
