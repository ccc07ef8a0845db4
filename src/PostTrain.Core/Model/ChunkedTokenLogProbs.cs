// Log-probabilities of given tokens under the output head, log softmax(h W^T / T)[target], without materialising the
// logits of all rows (GRPO scores every completion token; at vocab 163,840 the fp32 logits of 8,192 tokens are 5.4 GB,
// and the plain path keeps several such tensors for backward). Per chunk of rows:
//   forward   z = (h W^T in the activation dtype) / T in fp32,  lse = logsumexp_v z,  lp = z[target] - lse,
//             entropy = lse - sum_v softmax(z)_v z_v (no gradient; for the metric);  saved: lse (N) fp32
//   backward  the chunk's logits are recomputed: dz = g (onehot(target) - exp(z - lse)) / T,  dh = dz W,  dW += dz^T h
// so memory is O(chunk x V) instead of O(N x V), for one extra head GEMM in backward. Equals the plain path
// (Head -> gather -> / T -> log_softmax -> gather) in value and gradients (a CPU test compares them).
using PostTrain.Core.Precision;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace PostTrain.Core.Model;

public static class ChunkedTokenLogProbs
{
    internal static readonly object NoEntropy = new();

    /// <summary>h (N, H) in the activation dtype, weight (V, H), targets (N) int64 -> log-probabilities (N) fp32 (with
    /// gradient to h and weight) and, when asked, the entropies (N) fp32 (no gradient). temperature &lt;= 0 means 1.
    /// chunkRows 0 = <see cref="ChunkedHeadLoss.DefaultChunkRows"/>.</summary>
    public static (Tensor LogProbs, Tensor? Entropy) Compute(Tensor h, Tensor weight, Tensor targets, double temperature,
        bool withEntropy, long chunkRows = 0)
    {
        if (h.dim() != 2 || weight.dim() != 2 || weight.shape[1] != h.shape[1])
            throw new ArgumentException($"ChunkedTokenLogProbs: h [{string.Join(", ", h.shape)}] and weight [{string.Join(", ", weight.shape)}] must be (N, H) and (V, H).");
        if (targets.dim() != 1 || targets.shape[0] != h.shape[0])
            throw new ArgumentException($"ChunkedTokenLogProbs: {targets.shape[0]} targets for {h.shape[0]} rows.", nameof(targets));
        long chunk = chunkRows > 0 ? chunkRows : ChunkedHeadLoss.DefaultChunkRows(h.shape[0], weight.shape[0]);
        double t = temperature > 0 ? temperature : 1.0;
        // The entropies come back through a box, not as a second output: an unused output's gradient would make the
        // engine allocate zeros like it after the caller may have disposed it.
        var entropy = withEntropy ? new System.Runtime.CompilerServices.StrongBox<Tensor?>() : null;
        var lp = ChunkedTokenLogProbsFunction.apply(h, weight, targets, t, chunk, (object?)entropy ?? NoEntropy)[0];
        return (lp, entropy?.Value);
    }
}

internal sealed class ChunkedTokenLogProbsFunction : MultiTensorFunction<ChunkedTokenLogProbsFunction>
{
    public override string Name => "ChunkedTokenLogProbs";

    private sealed record Settings(double Temperature, long Chunk, ScalarType WeightType);

    // vars: h (N, H), weight (V, H), targets (N) int64, temperature (double), chunk rows (long), StrongBox for the
    // entropies or NoEntropy.
    public override List<Tensor> forward(AutogradContext ctx, params object[] vars)
    {
        var h = (Tensor)vars[0];
        var w = (Tensor)vars[1];
        var targets = (Tensor)vars[2];
        double temperature = (double)vars[3];
        long chunk = (long)vars[4];
        var entropyBox = vars[5] as System.Runtime.CompilerServices.StrongBox<Tensor?>;
        bool withEntropy = entropyBox is not null;
        long n = h.shape[0];
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var hd = h.detach();
        var wc = w.dtype == h.dtype ? w.detach() : w.detach().to(h.dtype);                  // (V, H) activation dtype
        var lp = empty(n, dtype: ScalarType.Float32, device: h.device);
        var lse = empty(n, dtype: ScalarType.Float32, device: h.device);
        var entropy = withEntropy ? empty(n, dtype: ScalarType.Float32, device: h.device) : null;
        for (long start = 0; start < n; start += chunk)
        {
            using var chunkScope = NewDisposeScope();   // one chunk's (c, V) logits alive at a time, not all of them
            long c = Math.Min(chunk, n - start);
            var z = Logits(hd.narrow(0, start, c), wc, temperature);                           // (c, V) fp32
            var l = z.logsumexp(1);                                                            // (c)
            lse.narrow(0, start, c).copy_(l);
            lp.narrow(0, start, c).copy_(z.gather(1, targets.narrow(0, start, c).unsqueeze(1)).squeeze(1) - l);
            if (withEntropy)
                entropy!.narrow(0, start, c).copy_(l - (z - l.unsqueeze(1)).exp_().mul_(z).sum([1L]));
        }
        ctx.save_for_backward([h, w, targets, lse]);                                          // the inputs themselves, and lse
        ctx.save_data("settings", new Settings(temperature, chunk, w.dtype));
        scope.MoveToOuter(lp, lse);
        if (entropyBox is not null) entropyBox.Value = entropy!.MoveToOuterDisposeScope();
        return [lp];
    }

    public override List<Tensor> backward(AutogradContext ctx, List<Tensor> grad_outputs)
    {
        AutogradReturns.ReleasePrevious();
        var s = (Settings)ctx.get_data("settings");
        Tensor dh, dw;
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var saved = ctx.get_saved_variables();
            Tensor h = saved[0], w = saved[1], targets = saved[2], lse = saved[3];
            var g = grad_outputs[0];                                                           // (N) fp32
            var wc = w.dtype == h.dtype ? w : w.to(h.dtype);
            long n = h.shape[0];
            dh = empty_like(h);
            var dwAcc = zeros(w.shape[0], w.shape[1], dtype: h.dtype, device: h.device);       // (V, H) activation dtype
            for (long start = 0; start < n; start += s.Chunk)
            {
                using var chunkScope = NewDisposeScope();   // one chunk's softmax alive at a time
                long c = Math.Min(s.Chunk, n - start);
                var hc = h.narrow(0, start, c);
                var p = Logits(hc, wc, s.Temperature).sub_(lse.narrow(0, start, c).unsqueeze(1)).exp_();   // softmax (c, V)
                p.neg_().scatter_add_(1, targets.narrow(0, start, c).unsqueeze(1), ones(c, 1, device: h.device)); // onehot - p
                var dz = p.mul_(g.narrow(0, start, c).unsqueeze(1) / s.Temperature).to(h.dtype);             // (c, V)
                dh.narrow(0, start, c).copy_(dz.mm(wc));                                                   // (c, H)
                dwAcc.addmm_(dz.t(), hc);                                                                  // += dz^T h
            }
            dw = dwAcc.to(s.WeightType);
            scope.Detach(dh, dw);
        }
        return AutogradReturns.Return(grad_outputs, [dh, dw, null, null, null, null]);
    }

    // (c, H) x (V, H)^T in the activation dtype, then fp32 / temperature.
    private static Tensor Logits(Tensor h, Tensor w, double temperature)
    {
        var z = nn.functional.linear(h, w).to(ScalarType.Float32);
        return temperature == 1.0 ? z : z.div_(temperature);
    }
}
