// MLA attention over the latent cache in the absorbed form (DeepSeek-V3's "absorb" inference mode):
//   q_lat = q_nope W_k            (per head, W_k = kv_b_proj's k part, (h, nope, r))
//   score = q_lat . latent + q_rope . k_rope     -> one bmm of [q_lat | q_rope] with the cached [latent | k_rope]
//   out   = (softmax(score * scale + bias) latent) W_v^T, then o_proj  (W_v = kv_b_proj's v part, (h, v, r))
// k_nope and v are never materialised; the cache holds r + dr values per token and layer. Used for decode (T = 1) and
// speculative verification (T = 2). A prefill into an empty cache (keys = the new tokens only) takes the expanded form
// instead, k = [k_nope | k_rope], v from kv_b_proj, through scaled_dot_product_attention, so the (B, h, T, T) score
// matrix is not materialised in fp32; it writes the same cache entries.
// Folded form (on CUDA, layers whose folded weights fit FoldedMaxBytes, e.g. every bench-moe layer): W_k is multiplied into the
// query projection and W_v into o_proj once per Generate call (in fp32 from the stored weights, then cast), so
//   [q_lat | q_rope] = c_q Wq'^T   (Wq' (h*(r+dr), q_in): per head [W_k^T Wq_nope ; Wq_rope])
//   out             = o_lat Wo'^T  (Wo' (H, h*r): per head Wo_h W_v_h)
// and a decode step's attention is q_a, its norm, one query GEMM, rotary, the key side, two bmm with the softmax
// between, and one output GEMM into the residual: 11 kernels instead of 16, no per-step layout copies at T = 1.
// Larger layers (the 16B model's) keep the two-step products, each one bmm over the heads with the weights as they are
// ((h, B*T, .) operands): a broadcasting matmul of (B, h, T, .) with (h, ., .) would first copy each weight B times
// (25 MB per layer and product at bench-moe's 64 rows). Either way the block's residual is the output GEMM's
// accumulator (addmm_ in place: no separate add, no new tensor).
using PostTrain.Core.Kernels;
using PostTrain.Core.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Generation;

internal static class AbsorbedAttention
{
    /// <summary>x (B, T, H) normed input -> residual + attention(x), (B, T, H), written into
    /// <paramref name="residual"/>'s storage (the caller's block input, not read again). Writes this step's
    /// [latent | k_rope] into cache layer <paramref name="layer"/> at the cursor; cos/sin (B, 1, T, dr/2); bias
    /// (B, 1, T, Cursor + T) from the cache.</summary>
    public static Tensor Forward(MlaAttention a, InferenceWeights w, Tensor x, Tensor residual, Tensor cos, Tensor sin, Rotary rotary,
        LatentKvCache cache, int layer, Tensor bias, bool absorbedPrefill = false)
    {
        using var scope = NewDisposeScope();
        var c = a.Config;
        long B = x.shape[0], T = x.shape[1];
        int h = c.NumAttentionHeads, nope = c.QkNopeHeadDim, rope = c.QkRopeHeadDim, vDim = c.VHeadDim, r = c.KvLoraRank;
        bool expanded = cache.Cursor == 0 && T > 1 && !absorbedPrefill;
        if (!expanded && Fold(a, w) is { } fold)
            return Folded(a, w, fold, x, residual, cos, sin, rotary, cache, layer, bias).MoveToOuterDisposeScope();

        var q = a.QProj is { } qp
            ? Lin(w, qp, x)
            : Lin(w, a.QBProj!, Norm(w, a.QALayerNorm!, Lin(w, a.QAProj!, x)));
        q = q.view(B, T, h, nope + rope).transpose(1, 2);                             // (B, h, T, nope+dr)
        var qRot = rotary.Apply(q.narrow(-1, nope, rope), cos, sin);                  // (B, h, T, dr)

        if (expanded)
            return ExpandedPrefill(a, w, x, residual, q, qRot, cos, sin, rotary, cache, layer, bias).MoveToOuterDisposeScope();

        var kvB = w.Derived($"{a.KvBProj.Weight.Handle}.kvb", () => w[a.KvBProj.Weight].view(h, nope + vDim, r));
        var wK = kvB.narrow(1, 0, nope);                                              // (h, nope, r)
        var wVt = kvB.narrow(1, nope, vDim).transpose(1, 2);                          // (h, r, v)
        var qNope = q.narrow(-1, 0, nope).transpose(0, 1).reshape(h, B * T, nope);   // (h, B*T, nope): a small copy
        var qLat = bmm(qNope, wK).view(h, B, T, r).transpose(0, 1);                   // (B, h, T, r) view

        var keys = AppendKeys(a, w, x, cos, sin, rotary, cache, layer, T);           // (B, S, r + dr)
        long S = keys.shape[1];

        var qc = cat([qLat, qRot], -1).reshape(B, h * T, r + rope);                   // (B, h*T, r + dr)
        var scores = bmm(qc, keys.transpose(1, 2)).view(B, h, T, S);                 // (B, h, T, S)
        var probs = DecodeKernels.Pick(scores, () => DecodeKernels.SoftmaxFits(scores, bias))
            .MaskedSoftmax(scores, bias, a.SoftmaxScale).view(B, h * T, S);
        var oLat = bmm(probs, keys.narrow(-1, 0, r)).view(B, h, T, r)                 // (B, h, T, r)
            .transpose(0, 1).reshape(h, B * T, r);                                    // (h, B*T, r): a small copy
        var o = bmm(oLat, wVt).view(h, B, T, vDim).permute(1, 2, 0, 3).reshape(B, T, h * vDim);
        return LinAdd(w, a.OProj, o, residual).MoveToOuterDisposeScope();            // (B, T, H)
    }

    /// <summary>This step's [norm(latent) | rope(k_rope)] from x written at its cache columns (one kernel on CUDA:
    /// DecodeKernels.LatentAppend) -> the layer's keys so far, (B, S, r + dr).</summary>
    private static Tensor AppendKeys(MlaAttention a, InferenceWeights w, Tensor x, Tensor cos, Tensor sin, Rotary rotary,
        LatentKvCache cache, int layer, long T)
    {
        var ckv = Lin(w, a.KvAProj, x);                                               // (B, T, r + dr)
        var normW = w[a.KvALayerNorm.Weight];
        return cache.AppendWith(layer, T, (layerCache, cols, cursor) =>
            DecodeKernels.Pick(ckv, () => DecodeKernels.LatentFits(ckv, normW, cos, sin, layerCache, cols))
                .LatentAppend(ckv, normW, a.KvALayerNorm.Eps, cos, sin, rotary.Interleave, layerCache, cols, cursor));
    }

    /// <summary>Layers whose folded weights (both, in the compute dtype) are larger than this keep the two-step
    /// products: for the 16B model's layers (71 MB each, 1.9 GB over 27 layers) the extra memory and weight reads would
    /// outweigh the saved kernels. POSTTRAIN_DECODE_FOLD=0 turns folding off (same-run comparisons).</summary>
    internal static long FoldedMaxBytes => Overridden.Value?.MaxBytes ?? DefaultFoldedMaxBytes;

    private static readonly long DefaultFoldedMaxBytes = Environment.GetEnvironmentVariable("POSTTRAIN_DECODE_FOLD") == "0" ? 0 : 32L << 20;

    /// <summary>Folding is for CUDA, where it saves kernels per decode step. On the CPU the two-step products stay: with
    /// them a row's log-probs do not depend on how many rows share its batch (MKL), so data-parallel GRPO samples
    /// what one process samples to the last bit; the folded GEMMs change that at fp32 rounding, which AdamW carries
    /// to ~1e-3 of a weight's norm in 8 steps (DataParallelGrpoTests). Tests turn it on to check the folded math.</summary>
    internal static bool FoldOnCpu => Overridden.Value?.OnCpu ?? false;

    private sealed record FoldSettings(long MaxBytes, bool OnCpu);

    // per async flow, so a test's setting never reaches a decode running beside it
    private static readonly AsyncLocal<FoldSettings?> Overridden = new();

    /// <summary>For the calling flow until disposed (tests): fold layers up to maxBytes, also on the CPU when onCpu.</summary>
    internal static IDisposable OverrideFolding(long maxBytes, bool onCpu)
    {
        var previous = Overridden.Value;
        Overridden.Value = new FoldSettings(maxBytes, onCpu);
        return new PostTrain.Core.Runtime.OnDispose(() => Overridden.Value = previous);
    }

    private sealed record FoldedWeights(Tensor Query, Tensor OutT);

    /// <summary>The folded query and output weights of this layer, built once per Generate call; null when the layer
    /// keeps the two-step products (too large, or a bias on the query or kv_b projection).</summary>
    private static FoldedWeights? Fold(MlaAttention a, InferenceWeights w)
    {
        var c = a.Config;
        int h = c.NumAttentionHeads, nope = c.QkNopeHeadDim, rope = c.QkRopeHeadDim, vDim = c.VHeadDim, r = c.KvLoraRank;
        var qLin = a.QProj ?? a.QBProj!;
        long qIn = qLin.Weight.shape[1], H = a.OProj.Weight.shape[0];
        long bytes = (h * (long)(r + rope) * qIn + H * h * (long)r) * w.Dtype.ElementSize();
        if (bytes > FoldedMaxBytes || qLin.Bias is not null || a.KvBProj.Bias is not null) return null;
        if (!FoldOnCpu && qLin.Weight.device.type == DeviceType.CPU) return null;
        var key = $"{qLin.Weight.Handle}.fold";
        var query = w.Derived(key + ".q", () =>
        {
            var wq = qLin.Weight.detach().to(ScalarType.Float32).view(h, nope + rope, qIn);
            var wk = a.KvBProj.Weight.detach().to(ScalarType.Float32).view(h, nope + vDim, r).narrow(1, 0, nope);   // (h, nope, r)
            var lat = bmm(wk.transpose(1, 2), wq.narrow(1, 0, nope));                                             // (h, r, q_in)
            return cat([lat, wq.narrow(1, nope, rope)], 1).reshape(h * (r + rope), qIn).to(w.Dtype);
        });
        var outT = w.Derived(key + ".o", () =>
        {
            var wo = a.OProj.Weight.detach().to(ScalarType.Float32).view(H, h, vDim).transpose(0, 1);            // (h, H, v)
            var wv = a.KvBProj.Weight.detach().to(ScalarType.Float32).view(h, nope + vDim, r).narrow(1, nope, vDim); // (h, v, r)
            return bmm(wo, wv).permute(0, 2, 1).reshape(h * r, H).to(w.Dtype);                                 // (h*r, H)
        });
        return new FoldedWeights(query, outT);
    }

    /// <summary>The absorbed attention with the folded weights (see the file header): residual + attention(x).</summary>
    private static Tensor Folded(MlaAttention a, InferenceWeights w, FoldedWeights f, Tensor x, Tensor residual, Tensor cos,
        Tensor sin, Rotary rotary, LatentKvCache cache, int layer, Tensor bias)
    {
        var c = a.Config;
        long B = x.shape[0], T = x.shape[1];
        int h = c.NumAttentionHeads, rope = c.QkRopeHeadDim, r = c.KvLoraRank;
        var cq = a.QProj is null ? Norm(w, a.QALayerNorm!, Lin(w, a.QAProj!, x)) : x;  // (B, T, q_in)
        var q = nn.functional.linear(cq, f.Query).view(B, T, h, r + rope);            // per head [q_lat | q_rope]
        var qRope = q.narrow(-1, r, rope).transpose(1, 2);                            // (B, h, T, dr) view
        qRope.copy_(rotary.Apply(qRope, cos, sin));
        var keys = AppendKeys(a, w, x, cos, sin, rotary, cache, layer, T);           // (B, S, r + dr)
        long S = keys.shape[1];
        var qc = q.transpose(1, 2).reshape(B, h * T, r + rope);                       // a view at T = 1
        var scores = bmm(qc, keys.transpose(1, 2)).view(B, h, T, S);                 // (B, h, T, S)
        var probs = DecodeKernels.Pick(scores, () => DecodeKernels.SoftmaxFits(scores, bias))
            .MaskedSoftmax(scores, bias, a.SoftmaxScale).view(B, h * T, S);
        var oLat = bmm(probs, keys.narrow(-1, 0, r)).view(B, h, T, r)                 // (B, h, T, r)
            .transpose(1, 2).reshape(B, T, h * r);                                    // a view at T = 1
        return MatmulAdd(oLat, f.OutT, residual, w.Optional(a.OProj.Bias));
    }

    /// <summary>Prefill into an empty cache: the model's own (non-absorbed) math through SDPA; fills the cache.</summary>
    private static Tensor ExpandedPrefill(MlaAttention a, InferenceWeights w, Tensor x, Tensor residual, Tensor q, Tensor qRot,
        Tensor cos, Tensor sin, Rotary rotary, LatentKvCache cache, int layer, Tensor bias)
    {
        var c = a.Config;
        long B = x.shape[0], T = x.shape[1];
        int h = c.NumAttentionHeads, nope = c.QkNopeHeadDim, rope = c.QkRopeHeadDim, vDim = c.VHeadDim, r = c.KvLoraRank;
        var ckv = Lin(w, a.KvAProj, x);                                               // (B, T, r + dr)
        var latent = Norm(w, a.KvALayerNorm, ckv.narrow(-1, 0, r));                   // (B, T, r)
        var kRot = rotary.Apply(ckv.narrow(-1, r, rope).unsqueeze(1), cos, sin);      // (B, 1, T, dr)
        cache.Append(layer, cat([latent, kRot.squeeze(1)], -1));
        var kv = Lin(w, a.KvBProj, latent).view(B, T, h, nope + vDim).transpose(1, 2); // (B, h, T, nope + v)
        var k = cat([kv.narrow(-1, 0, nope), kRot.expand(B, h, T, rope)], -1);        // (B, h, T, qk)
        var v = kv.narrow(-1, nope, vDim);                                            // (B, h, T, v)
        var qFull = cat([q.narrow(-1, 0, nope), qRot], -1) * (a.SoftmaxScale * Math.Sqrt(nope + rope)); // SDPA divides by sqrt(qk)
        var o = nn.functional.scaled_dot_product_attention(qFull, k, v, attn_mask: bias.to(x.dtype)); // (B, h, T, v)
        return LinAdd(w, a.OProj, o.transpose(1, 2).reshape(B, T, h * vDim), residual);
    }

    internal static Tensor Lin(InferenceWeights w, Model.Linear l, Tensor x) =>
        nn.functional.linear(x, w[l.Weight], w.Optional(l.Bias));

    /// <summary>residual + x W^T (+ b), accumulated into <paramref name="residual"/> in place: one GEMM with the residual
    /// as its C operand (beta = 1) instead of a GEMM, an add and a new tensor. Returns a handle to residual's storage.</summary>
    internal static Tensor LinAdd(InferenceWeights w, Model.Linear l, Tensor x, Tensor residual) =>
        MatmulAdd(x, w[l.Weight].t(), residual, w.Optional(l.Bias));

    /// <summary>residual += x m (+ b) in place, x (..., K), m (K, H), residual (..., H) contiguous. Returns a new handle
    /// to residual's storage, owned by the current dispose scope (the caller's handle stays with its own scope).</summary>
    internal static Tensor MatmulAdd(Tensor x, Tensor m, Tensor residual, Tensor? bias = null)
    {
        long H = residual.shape[^1], rows = residual.numel() / H;
        if (!residual.is_contiguous()) throw new ArgumentException("MatmulAdd: the residual must be contiguous (it is updated in place)");
        using (var flat = residual.view(rows, H)) flat.addmm_(x.reshape(rows, x.shape[^1]), m);
        if (bias is not null) residual.add_(bias);
        return residual.alias();
    }

    /// <summary>RMSNorm in fp32, scaled by the weight in the compute dtype (as Hugging Face does in bf16).</summary>
    internal static Tensor Norm(InferenceWeights w, RMSNorm n, Tensor x) => Norm(x, w[n.Weight], n.Eps);

    /// <summary>RMSNorm of x with <paramref name="weight"/> (the compute-dtype copy): the fused kernel on CUDA, else fp32 math.</summary>
    internal static Tensor Norm(Tensor x, Tensor weight, double eps)
    {
        if (FusedKernels.For(x) is { } kernels) return FusedOps.RmsNorm(x, weight, eps, kernels);   // CUDA: one kernel
        using var scope = NewDisposeScope();
        var f = x.to(ScalarType.Float32);
        f = f * rsqrt(f.pow(2).mean([-1L], keepdim: true) + eps);
        return (weight * f.to(x.dtype)).MoveToOuterDisposeScope();
    }
}
