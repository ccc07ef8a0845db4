// The ATen multi-tensor optimizer ops TorchSharp 0.107 does not wrap, reached through one fixed TorchScript compiled
// once per process (as PrecisionScripts reaches _grouped_mm): torch._fused_adamw_ (one fused AdamW kernel over a list
// of parameters, CPU and CUDA; the learning rate and the per-parameter step counts are tensors, so the call can be
// captured in a CUDA graph), _foreach_add_ for the step counts, _foreach_zero_ for the gradients, and the global
// grad-norm clip g *= min(1, max / (||g||_2 + 1e-6)) with the norm on the device (as torch.nn.utils.clip_grad_norm_).
// A TorchScript compile error aborts the process (std::terminate), so the source is a constant and a CPU test
// compiles and runs every function.
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Precision;

internal static class OptimizerScripts
{
    internal const string Source = """
def fused_adamw(params: List[Tensor], grads: List[Tensor], exp_avgs: List[Tensor], exp_avg_sqs: List[Tensor], steps: List[Tensor], lr: Tensor, beta1: float, beta2: float, weight_decay: float, eps: float) -> Tensor:
    torch._foreach_add_(steps, 1.0)
    empty: List[Tensor] = []
    torch._fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, empty, steps, lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay, eps=eps, amsgrad=False, maximize=False, grad_scale=None, found_inf=None)
    return lr

def fused_adamw_guarded(params: List[Tensor], grads: List[Tensor], exp_avgs: List[Tensor], exp_avg_sqs: List[Tensor], steps: List[Tensor], lr: Tensor, beta1: float, beta2: float, weight_decay: float, eps: float, found_inf: Tensor) -> Tensor:
    torch._foreach_add_(steps, 1.0 - found_inf)
    empty: List[Tensor] = []
    torch._fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, empty, steps, lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay, eps=eps, amsgrad=False, maximize=False, grad_scale=None, found_inf=found_inf)
    return lr

def clip_grad_norm(grads: List[Tensor], max_norm: float) -> Tensor:
    norms = torch._foreach_norm(grads, 2.0)
    total = torch.stack([n.float() for n in norms]).pow(2).sum().sqrt()
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    torch._foreach_mul_(grads, scale)
    return total

def foreach_zero(tensors: List[Tensor]) -> int:
    torch._foreach_zero_(tensors)
    return 0

""";

    private static readonly Lazy<jit.CompilationUnit> Unit = new(() => jit.compile(Source), LazyThreadSafetyMode.ExecutionAndPublication);

    internal static void EnsureCompiled() => _ = Unit.Value;

    /// <summary>steps += 1, then one fused AdamW update of every parameter in the lists (all of one dtype and device;
    /// lr a float32 scalar tensor on that device).</summary>
    internal static void FusedAdamW(Tensor[] param, Tensor[] grads, Tensor[] expAvg, Tensor[] expAvgSq, Tensor[] steps, Tensor lr,
        double beta1, double beta2, double weightDecay, double eps)
    {
        var result = Unit.Value.invoke("fused_adamw", param, grads, expAvg, expAvgSq, steps, lr, beta1, beta2, weightDecay, eps);
        (result as IDisposable)?.Dispose();
    }

    /// <summary>As FusedAdamW, but skips the update (parameters, moments and step counts unchanged) where
    /// foundInf (a float32 scalar on the parameters' device) is 1: the on-device form of a non-finite-loss guard.</summary>
    internal static void FusedAdamWGuarded(Tensor[] param, Tensor[] grads, Tensor[] expAvg, Tensor[] expAvgSq, Tensor[] steps, Tensor lr,
        double beta1, double beta2, double weightDecay, double eps, Tensor foundInf)
    {
        var result = Unit.Value.invoke("fused_adamw_guarded", param, grads, expAvg, expAvgSq, steps, lr, beta1, beta2, weightDecay, eps, foundInf);
        (result as IDisposable)?.Dispose();
    }

    /// <summary>Clips the global L2 norm of grads to maxNorm in place; returns the norm before clipping (fp32 scalar).</summary>
    internal static Tensor ClipGradNorm(Tensor[] grads, double maxNorm) => (Tensor)Unit.Value.invoke("clip_grad_norm", grads, maxNorm);

    /// <summary>Zeroes every tensor of the list in one multi-tensor kernel.</summary>
    internal static void ZeroAll(Tensor[] tensors)
    {
        if (tensors.Length > 0) Unit.Value.invoke("foreach_zero", [tensors]);
    }
}
