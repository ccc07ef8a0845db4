// Gradient check of the FP8 linear layer against the FP32 (and BF16) one on the same data: FP8 E4M3
// rounds each operand to 3 mantissa bits (per-element error up to 2^-4, about 2.6% RMS), so products and
// gradients land ~3.7% (Wgrad ~4.5%, X being quantised twice) from FP32 in relative Frobenius norm,
// while BF16 lands ~0.3%. Bars: FP8 within 1%..5% (6% for dW), BF16 below 0.5%, directions aligned.
using PostTrain.Core.Precision;
using TorchSharp;
using static TorchSharp.torch;
using P = PostTrain.Core.Precision.Precision;

namespace PostTrain.Core.Tests.Precision;

public sealed class Fp8AccuracyTests
{
    private static (Tensor y, Tensor dx, Tensor dw, Tensor db) Run(Tensor x0, Tensor w0, Tensor b0, Tensor dy, P p)
    {
        var x = x0.clone().requires_grad_(true);
        var w = nn.Parameter(w0.clone());
        var b = nn.Parameter(b0.clone());
        var y = LinearOps.Linear(x, w, b, p);
        y.backward([dy]);
        return (y.detach(), x.grad!, w.grad!, b.grad!);
    }

    private static double Rel(Tensor a, Tensor b) => ((a - b).norm() / b.norm()).item<float>();

    private static double Cos(Tensor a, Tensor b) => ((a * b).sum() / (a.norm() * b.norm())).item<float>();

    [Fact]
    public void Fp8GradientsAreWithinFp8ToleranceOfFp32AndBf16()
    {
        var rng = new Rng(30);
        var x = rng.Randn(192, 300);
        var w = rng.Randn(136, 300) * 0.05;
        var b = rng.Randn(136);
        var dy = rng.Randn(192, 136);

        var f32 = Run(x, w, b, dy, P.Fp32);
        var bf16 = Run(x, w, b, dy, P.Bf16);
        var f8 = Run(x, w, b, dy, P.Fp8);

        Assert.InRange(Rel(f8.y - b, f32.y - b), 0.01, 0.05);
        Assert.InRange(Rel(f8.dx, f32.dx), 0.01, 0.05);
        Assert.InRange(Rel(f8.dw, f32.dw), 0.01, 0.06);
        Assert.True(Rel(f8.db, f32.db) < 1e-6);                       // the bias gradient is a plain FP32 sum
        Assert.True(Cos(f8.dw, f32.dw) > 0.998);
        Assert.True(Cos(f8.dx, f32.dx) > 0.998);

        Assert.True(Rel(bf16.dx, f32.dx) < 0.005);
        Assert.True(Rel(bf16.dw, f32.dw) < 0.005);
        Assert.InRange(Rel(f8.dw, bf16.dw), 0.01, 0.06);
    }

    [Fact]
    public void Bf16LinearReturnsTheInputsDtype()
    {
        var rng = new Rng(31);
        var w = nn.Parameter(rng.Randn(8, 16));
        Assert.Equal(ScalarType.Float32, LinearOps.Linear(rng.Randn(4, 16), w, null, P.Bf16).dtype);
        Assert.Equal(ScalarType.BFloat16, LinearOps.Linear(rng.Randn(4, 16).to(ScalarType.BFloat16), w, null, P.Bf16).dtype);
        Assert.Equal(ScalarType.BFloat16, LinearOps.Linear(rng.Randn(4, 16).to(ScalarType.BFloat16), w, null, P.Fp8).dtype);
    }
}
