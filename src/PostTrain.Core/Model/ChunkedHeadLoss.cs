// Output head + cross-entropy over row chunks, without materialising the logits of the whole batch (at vocab 163,840
// and 8,192 tokens the fp32 logits alone are 5.4 GB). For each chunk of rows: logits = h W^T in the activation dtype,
// log-probabilities in fp32, loss += sum over target rows of -log p[label]; and, since the loss is a sum of per-row
// terms, its gradient is formed right there: dlogits = softmax - onehot(label) (zero on ignored rows), dh = dlogits W,
// dW += dlogits^T h (one GEMM with beta 1 into an accumulator in the activation dtype: fp32 accumulation inside each
// chunk's GEMM, one rounding per chunk). Forward keeps only dh (N, H) and dW (V, H); backward scales them by the
// incoming gradient. The head's GEMMs run once each, as in the plain path; no recompute. With the fused kernels
// (IFusedKernels.SoftmaxCrossEntropy, native on CUDA) the log-softmax, gather, exp, onehot and casts are one kernel
// that writes dlogits over the chunk's logits in the activation dtype.
//   loss_sum = sum_{t: label_t != -100} (logsumexp_v z_tv - z_t,label_t),  z = h W^T.
// Equals Losses.CrossEntropySum(Head(h), labels) in value and gradients (a CPU test compares them).
using PostTrain.Core.Precision;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace PostTrain.Core.Model;

public static class ChunkedHeadLoss
{
    // Stands for "no fused kernels" in the autograd function's argument list (which takes no nulls).
    internal static readonly object NoKernels = new();

    /// <summary>Rows per chunk so that one chunk's fp32 log-probabilities stay near 2^28 elements (1 GiB).</summary>
    public static long DefaultChunkRows(long rows, long vocab) => Math.Clamp((1L << 28) / Math.Max(1, vocab) / 256 * 256, 256, Math.Max(256, rows));

    /// <summary>Sum of token cross-entropies (fp32 scalar) of head(h) against labels; h (..., H), weight (V, H),
    /// labels (...) int64 with -100 = ignored. chunkRows 0 = <see cref="DefaultChunkRows"/>.</summary>
    /// <param name="kernels">The fused softmax cross-entropy backend (null: FusedKernels.For(h), which is null off CUDA
    /// and then the plain ops run).</param>
    public static Tensor Sum(Tensor h, Tensor weight, Tensor labels, long chunkRows = 0, Kernels.IFusedKernels? kernels = null)
    {
        long H = h.shape[^1];
        if (weight.dim() != 2 || weight.shape[1] != H)
            throw new ArgumentException($"ChunkedHeadLoss: weight [{string.Join(", ", weight.shape)}] must be (V, {H}).", nameof(weight));
        var flat = h.reshape(-1, H);
        var lab = labels.reshape(-1);
        if (lab.shape[0] != flat.shape[0])
            throw new ArgumentException($"ChunkedHeadLoss: {lab.shape[0]} labels for {flat.shape[0]} rows.", nameof(labels));
        long chunk = chunkRows > 0 ? chunkRows : DefaultChunkRows(flat.shape[0], weight.shape[0]);
        return ChunkedHeadLossFunction.apply(flat, weight, lab, chunk, (object?)(kernels ?? Kernels.FusedKernels.For(flat)) ?? NoKernels)[0];
    }
}

internal sealed class ChunkedHeadLossFunction : MultiTensorFunction<ChunkedHeadLossFunction>
{
    public override string Name => "ChunkedHeadCrossEntropy";

    // vars: h (N, H) activation dtype, weight (V, H), labels (N) int64, chunk rows (long), IFusedKernels or NoKernels.
    public override List<Tensor> forward(AutogradContext ctx, params object[] vars)
    {
        var h = (Tensor)vars[0];
        var w = (Tensor)vars[1];
        var labels = (Tensor)vars[2];
        long chunk = (long)vars[3];
        var kernels = vars[4] as Kernels.IFusedKernels;
        long n = h.shape[0], hidden = h.shape[1], vocab = w.shape[0];
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var hd = h.detach();
        var wc = w.dtype == h.dtype ? w.detach() : w.detach().to(h.dtype);                   // (V, H) activation dtype
        var valid = labels.ne(Losses.Ignore);                                                 // (N)
        var safe = labels.masked_fill(valid.logical_not(), 0).unsqueeze(1);                   // (N, 1)
        var vmask = valid.to(h.dtype).unsqueeze(1);                                           // (N, 1)
        var sum = zeros(1, dtype: ScalarType.Float32, device: h.device).squeeze();
        var dh = empty_like(hd);                                                              // (N, H)
        var dw = zeros(vocab, hidden, dtype: h.dtype, device: h.device);                      // (V, H) activation dtype
        for (long start = 0; start < n; start += chunk)
        {
            // Each chunk's logits and temporaries are freed before the next chunk: in the outer scope they all stayed
            // alive until the loss returned, which held every chunk's (c, V) logits at once (at bench-moe-large's
            // vocab 163,840 and 8,192 rows: six chunks, 3 GB, at the step's memory peak).
            using var chunkScope = NewDisposeScope();
            long c = Math.Min(chunk, n - start);
            var hc = hd.narrow(0, start, c);                                                  // (c, H)
            var vc = vmask.narrow(0, start, c);                                               // (c, 1)
            var tc = safe.narrow(0, start, c);                                                // (c, 1)
            if (kernels is not null)
            {
                // One fused pass: dlogits over the logits in the activation dtype, per-row losses in fp32; ignored
                // rows come back as zeros, so no masks are needed.
                var (pk, rowLoss) = kernels.SoftmaxCrossEntropy(nn.functional.linear(hc, wc), labels.narrow(0, start, c), overwriteLogits: true);
                sum.add_(rowLoss.sum());
                dh.narrow(0, start, c).copy_(pk.mm(wc));                                      // (c, H)
                dw.addmm_(pk.t(), hc);                                                        // += dlogits^T h
                continue;
            }
            var logp = nn.functional.linear(hc, wc).log_softmax(1, ScalarType.Float32);      // (c, V) fp32
            sum.sub_((logp.gather(1, tc) * vc.to(ScalarType.Float32)).sum());
            var p = logp.exp_();                                                              // softmax
            p.scatter_add_(1, tc, full(c, 1, -1.0f, dtype: ScalarType.Float32, device: h.device));   // - onehot
            var pc = p.to(h.dtype);                                                           // (c, V) dlogits (rows masked below)
            dh.narrow(0, start, c).copy_(pc.mm(wc).mul_(vc));                                // (c, H)
            dw.addmm_(pc.t(), hc * vc);                                                       // += dlogits^T h (GEMM, beta 1)
        }
        dw = dw.to(w.dtype);
        ctx.save_for_backward([dh, dw]);
        scope.MoveToOuter(dh, dw, sum);
        return [sum];
    }

    public override List<Tensor> backward(AutogradContext ctx, List<Tensor> grad_outputs)
    {
        AutogradReturns.ReleasePrevious();
        Tensor dh, dw;
        using (var scope = NewDisposeScope())
        {
            var saved = ctx.get_saved_variables();
            var g = grad_outputs[0];                                                          // () fp32
            dh = saved[0] * g.to(saved[0].dtype);
            dw = saved[1] * g.to(saved[1].dtype);
            scope.Detach(dh, dw);
        }
        return AutogradReturns.Return(grad_outputs, [dh, dw, null, null, null]);
    }
}
