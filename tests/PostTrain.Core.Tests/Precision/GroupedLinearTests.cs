// Grouped (MoE) linear against a loop over experts: FP8 against LinearOps' FP8 per expert, FP32/BF16
// (torch._grouped_mm) against plain per-expert matmuls; forward and both gradients; an empty expert;
// a .sum() loss whose stride-0 gradient _grouped_mm's backward would reject without ContiguousGrad.
using PostTrain.Core.Precision;
using TorchSharp;
using static TorchSharp.torch;
using P = PostTrain.Core.Precision.Precision;

namespace PostTrain.Core.Tests.Precision;

public sealed class GroupedLinearTests
{
    private static readonly long[] Counts = [70, 0, 130, 3];     // an empty expert, and slices not multiples of 128
    private const long K = 136, N = 200;

    private static (Tensor x, Tensor w, Tensor dy) Inputs(int seed)
    {
        var rng = new Rng((ulong)seed);
        long t = Counts.Sum();
        return (rng.Randn(t, K), rng.Randn(Counts.Length, N, K) * 0.1, rng.Randn(t, N));
    }

    private static (Tensor y, Tensor dx, Tensor dw) Grouped(Tensor x0, Tensor w0, Tensor dy, P p)
    {
        var x = x0.clone().requires_grad_(true);
        var w = nn.Parameter(w0.clone());
        var y = Fp8.GroupedLinear(x, w, tensor(Counts), p);
        y.backward([dy]);
        return (y.detach(), x.grad!, w.grad!);
    }

    private static (Tensor y, Tensor dx, Tensor dw) Loop(Tensor x0, Tensor w0, Tensor dy, P p)
    {
        var x = x0.clone().requires_grad_(true);
        var w = nn.Parameter(w0.clone());
        var pieces = new List<Tensor>();
        long start = 0;
        for (int e = 0; e < Counts.Length; e++)
        {
            pieces.Add(LinearOps.Linear(x.narrow(0, start, Counts[e]), w[e], null, p));
            start += Counts[e];
        }
        var y = cat(pieces, 0);
        y.backward([dy]);
        return (y.detach(), x.grad!, w.grad!);
    }

    private static void AssertClose(Tensor a, Tensor b, double tol, string what)
    {
        double err = (a - b).abs().max().item<float>() / b.abs().max().item<float>();
        Assert.True(err <= tol, $"{what}: relative error {err}");
    }

    [Theory]
    [InlineData(P.Fp8, 1e-6)]
    [InlineData(P.Fp32, 1e-5)]
    [InlineData(P.Bf16, 1e-2)]
    public void GroupedMatchesALoopOverExperts(P p, double tol)
    {
        var (x, w, dy) = Inputs(20);

        var g = Grouped(x, w, dy, p);
        var l = Loop(x, w, dy, p);

        AssertClose(g.y, l.y, tol, "y");
        AssertClose(g.dx, l.dx, tol, "dx");
        AssertClose(g.dw, l.dw, tol, "dw");
        Assert.Equal(0f, g.dw[1].abs().sum().item<float>());          // the empty expert gets a zero gradient
    }

    [Fact]
    public void Fp8GroupedIsCloseToFp32Grouped()
    {
        var (x, w, dy) = Inputs(21);

        var f8 = Grouped(x, w, dy, P.Fp8);
        var f32 = Grouped(x, w, dy, P.Fp32);

        foreach (var (a, b, what) in new[] { (f8.y, f32.y, "y"), (f8.dx, f32.dx, "dx"), (f8.dw, f32.dw, "dw") })
        {
            double rel = ((a - b).norm() / b.norm()).item<float>();
            Assert.InRange(rel, 0.01, 0.06);                          // E4M3 rounding: a few percent, never zero
            _ = what;
        }
    }

    [Theory]
    [InlineData(P.Fp32)]
    [InlineData(P.Bf16)]
    [InlineData(P.Fp8)]
    public void SumLossBackpropagatesThroughGroupedMm(P p)
    {
        var (x0, w0, _) = Inputs(22);
        var w = nn.Parameter(w0.clone());

        Fp8.GroupedLinear(x0, w, tensor(Counts), p).sum().backward();

        // d(sum y)/dW_e = 1^T X_e: each row of dW_e is the column sums of the expert's tokens.
        var expected = x0.narrow(0, 70, 130).sum(dim: 0);
        AssertClose(w.grad![2][5], expected, p == P.Fp32 ? 1e-5 : 0.1, "dW row");
    }

    [Fact]
    public void CountsThatDoNotAddUpAreRejected()
    {
        var (x, w, _) = Inputs(23);
        var ex = Assert.Throws<ArgumentException>(() => Fp8.GroupedLinear(x, w, tensor(new long[] { 1, 2, 3, 4 }), P.Fp8));
        Assert.Contains("sum to the 203 rows", ex.Message);
        Assert.Throws<ArgumentException>(() => Fp8.GroupedLinear(x, w, tensor(new long[] { 203 }), P.Fp32));
    }
}
