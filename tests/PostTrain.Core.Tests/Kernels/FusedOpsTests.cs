// The fused RMSNorm / SwiGLU operations (PostTrain.Core.Kernels): their hand-written backward formulas, run through the
// custom autograd functions with the reference backend (the formulas the CUDA kernels implement), against autograd of
// the model's plain ops; the no-grad forward; and the self-check the GPU runs before it trusts the native kernels:
// it passes for a backend that agrees and names the first output of one that does not.
using PostTrain.Core.Kernels;
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Kernels;

public sealed class FusedOpsTests
{
    private static void Close(Tensor got, Tensor want, double tol, string what)
    {
        double scale = want.abs().max().item<float>() + 1e-12;
        double worst = (got.to(ScalarType.Float32) - want.to(ScalarType.Float32)).abs().max().item<float>();
        Assert.True(worst <= tol * scale, $"{what}: largest difference {worst} (scale {scale})");
    }

    [Fact]
    public void RmsNorm_values_and_gradients_equal_autograd_of_the_plain_norm()
    {
        manual_seed(7);
        var norm = new RMSNorm(24, eps: 1e-6);
        using (no_grad()) norm.Weight.copy_(rand(24) + 0.5);
        var x = (randn(3, 5, 24) * 2).requires_grad_(true);
        var c = randn(3, 5, 24);
        (norm.forward(x) * c).sum().backward();
        var dxPlain = x.grad!.clone();
        var dwPlain = norm.Weight.grad!.clone();

        var x2 = x.detach().clone().requires_grad_(true);
        var w2 = norm.Weight.detach().clone().requires_grad_(true);
        var y2 = FusedOps.RmsNorm(x2, w2, 1e-6, ReferenceFusedKernels.Instance);
        Assert.Equal(x.shape, y2.shape);
        Close(y2, norm.forward(x).detach(), 1e-6, "y");
        (y2 * c).sum().backward();
        Close(x2.grad!, dxPlain, 1e-5, "dx");
        Close(w2.grad!, dwPlain, 1e-5, "dw");
    }

    [Fact]
    public void RmsNorm_with_a_frozen_weight_and_without_autograd()
    {
        manual_seed(8);
        var w = rand(16) + 0.5;
        var x = randn(6, 16).requires_grad_(true);
        var y = FusedOps.RmsNorm(x, w, 1e-5, ReferenceFusedKernels.Instance);
        y.pow(2).sum().backward();
        var xr = x.detach().clone().requires_grad_(true);
        (xr * rsqrt(xr.pow(2).mean([-1L], keepdim: true) + 1e-5) * w).pow(2).sum().backward();
        Close(x.grad!, xr.grad!, 1e-5, "dx, frozen weight");
        using (no_grad())
        {
            var yn = FusedOps.RmsNorm(x, w, 1e-5, ReferenceFusedKernels.Instance);
            Assert.False(yn.requires_grad);
            Close(yn, y.detach(), 1e-7, "no-grad forward");
        }
    }

    [Fact]
    public void SwiGlu_values_and_gradients_equal_autograd_of_silu_times_up()
    {
        manual_seed(9);
        var a = (randn(4, 7, 10) * 3).requires_grad_(true);
        var b = randn(4, 7, 10).requires_grad_(true);
        var c = randn(4, 7, 10);
        (nn.functional.silu(a) * b * c).sum().backward();
        var a2 = a.detach().clone().requires_grad_(true);
        var b2 = b.detach().clone().requires_grad_(true);
        var h = FusedOps.SwiGlu(a2, b2, ReferenceFusedKernels.Instance);
        Close(h, (nn.functional.silu(a) * b).detach(), 1e-6, "h");
        (h * c).sum().backward();
        Close(a2.grad!, a.grad!, 1e-5, "da");
        Close(b2.grad!, b.grad!, 1e-5, "db");
    }

    [Fact]
    public void The_plain_ops_run_off_CUDA()
    {
        Assert.Null(FusedKernels.For(zeros(2, 4)));
        var a = randn(3, 8);
        var b = randn(3, 8);
        Assert.True(FusedOps.SiluMul(a, b).allclose(nn.functional.silu(a) * b));
    }

    [Fact]
    public void Self_check_passes_an_agreeing_backend_and_names_what_a_wrong_one_gets_wrong()
    {
        var cpu = CPU;
        Assert.Null(FusedKernels.SelfCheck(ReferenceFusedKernels.Instance, ReferenceFusedKernels.Instance, cpu));
        var wrongDw = FusedKernels.SelfCheck(new Perturbed(dwScale: 1.01), ReferenceFusedKernels.Instance, cpu);
        Assert.NotNull(wrongDw);
        Assert.StartsWith("RMSNorm backward dw (Float32 activations, Float32 weight, width 512)", wrongDw);
        var wrongGlu = FusedKernels.SelfCheck(new Perturbed(dbScale: 1.05), ReferenceFusedKernels.Instance, cpu);
        Assert.StartsWith("SwiGLU backward db (Float32 activations", wrongGlu);
        // bf16 rounding alone passes: the reference computed in fp32 and rounded once vs the same again
        Assert.Null(FusedKernels.SelfCheck(new Perturbed(dwScale: 1.00001), ReferenceFusedKernels.Instance, cpu));
    }

    [Fact]
    public void ReferenceSoftmaxCrossEntropyIsCrossEntropyAndSoftmaxMinusOnehot()
    {
        var z = randn(5, 11, generator: new Generator(9)) * 3;
        var labels = tensor(new long[] { 3, -100, 10, 0, 11 });                   // an ignored row, the last id, one out of range
        var (d, loss) = ReferenceFusedKernels.Instance.SoftmaxCrossEntropy(z, labels, overwriteLogits: false);
        var p = softmax(z, 1);
        foreach (var (row, label) in new[] { (0, 3L), (2, 10L), (3, 0L) })
        {
            Assert.Equal(-Math.Log(p[row, label].item<float>()), loss[row].item<float>(), 4);
            var want = p[row].clone();
            want[label] -= 1;
            Assert.True(d[row].allclose(want, rtol: 1e-5, atol: 1e-6), $"row {row}");
        }
        Assert.Equal(0f, loss[1].item<float>());
        Assert.Equal(0f, d[1].abs().sum().item<float>());
        Assert.True(float.IsNaN(loss[4].item<float>()), "an out-of-range label must show as NaN");

        var zc = z.clone();
        var (d2, _) = ReferenceFusedKernels.Instance.SoftmaxCrossEntropy(zc, labels, overwriteLogits: true);
        Assert.Equal(PostTrain.Core.Distributed.TensorPointer.Of(zc), PostTrain.Core.Distributed.TensorPointer.Of(d2));
        Assert.True(zc.allclose(d));
        var wrong = FusedKernels.SelfCheck(new Perturbed(lossScale: 1.01), ReferenceFusedKernels.Instance, CPU);
        Assert.StartsWith("softmax cross-entropy loss (Float32 logits, vocab 1000)", wrong);
    }

    /// <summary>The reference backend with one output scaled: a stand-in for a kernel with a bug.</summary>
    private sealed class Perturbed(double dwScale = 1, double dbScale = 1, double lossScale = 1) : IFusedKernels
    {
        private readonly ReferenceFusedKernels inner = ReferenceFusedKernels.Instance;
        public (Tensor Y, Tensor Rstd) RmsNormForward(Tensor x, Tensor w, double eps) => inner.RmsNormForward(x, w, eps);
        public (Tensor Dx, Tensor Dw) RmsNormBackward(Tensor dy, Tensor x, Tensor w, Tensor rstd)
        {
            var (dx, dw) = inner.RmsNormBackward(dy, x, w, rstd);
            return (dx, dw * dwScale);
        }
        public Tensor SwiGluForward(Tensor a, Tensor b) => inner.SwiGluForward(a, b);
        public (Tensor Da, Tensor Db) SwiGluBackward(Tensor dh, Tensor a, Tensor b)
        {
            var (da, db) = inner.SwiGluBackward(dh, a, b);
            return (da, db * dbScale);
        }
        public (Tensor Dlogits, Tensor Loss) SoftmaxCrossEntropy(Tensor logits, Tensor labels, bool overwriteLogits)
        {
            var (d, loss) = inner.SoftmaxCrossEntropy(logits, labels, overwriteLogits);
            return (d, loss * lossScale);
        }
    }
}
