// MLA attention over the latent cache in the absorbed form (DeepSeek-V3's "absorb" inference mode):
//   q_lat = q_nope W_k            (per head, W_k = kv_b_proj's k part, (h, nope, r))
//   score = q_lat . latent + q_rope . k_rope     -> one bmm of [q_lat | q_rope] with the cached [latent | k_rope]
//   out   = (softmax(score * scale + bias) latent) W_v^T, then o_proj  (W_v = kv_b_proj's v part, (h, v, r))
// k_nope and v are never materialised; the cache holds r + dr values per token and layer. Used for decode (T = 1) and
// speculative verification (T = 2). The per-head products with W_k and W_v run as one bmm over the heads with the
// weights as they are ((h, B*T, .) operands): a broadcasting matmul of (B, h, T, .) with (h, ., .) would first copy each
// weight B times (25 MB per layer and product at bench-moe's 64 rows). The block's residual is the o_proj GEMM's
// accumulator (addmm_ in place: no separate add, no new tensor). A prefill into an empty cache (keys = the new tokens only) takes the expanded
// form instead, k = [k_nope | k_rope], v from kv_b_proj, through scaled_dot_product_attention, so the (B, h, T, T)
// score matrix is not materialised in fp32; it writes the same cache entries.
using PostTrain.Core.Kernels;
using PostTrain.Core.Model;
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

        var q = a.QProj is { } qp
            ? Lin(w, qp, x)
            : Lin(w, a.QBProj!, Norm(w, a.QALayerNorm!, Lin(w, a.QAProj!, x)));
        q = q.view(B, T, h, nope + rope).transpose(1, 2);                             // (B, h, T, nope+dr)
        var qRot = rotary.Apply(q.narrow(-1, nope, rope), cos, sin);                  // (B, h, T, dr)

        if (cache.Cursor == 0 && T > 1 && !absorbedPrefill)
            return ExpandedPrefill(a, w, x, residual, q, qRot, cos, sin, rotary, cache, layer, bias).MoveToOuterDisposeScope();

        var kvB = w.Derived($"{a.KvBProj.Weight.Handle}.kvb", () => w[a.KvBProj.Weight].view(h, nope + vDim, r));
        var wK = kvB.narrow(1, 0, nope);                                              // (h, nope, r)
        var wVt = kvB.narrow(1, nope, vDim).transpose(1, 2);                          // (h, r, v)
        var qNope = q.narrow(-1, 0, nope).transpose(0, 1).reshape(h, B * T, nope);   // (h, B*T, nope): a small copy
        var qLat = bmm(qNope, wK).view(h, B, T, r).transpose(0, 1);                   // (B, h, T, r) view

        var ckv = Lin(w, a.KvAProj, x);                                               // (B, T, r + dr)
        // [norm(latent) | rope(k_rope)] written at this step's cache columns: one kernel on CUDA (DecodeKernels).
        var normW = w[a.KvALayerNorm.Weight];
        var keys = cache.AppendWith(layer, T, (layerCache, cols, cursor) =>
            DecodeKernels.Pick(ckv, () => DecodeKernels.LatentFits(ckv, normW, cos, sin, layerCache, cols))
                .LatentAppend(ckv, normW, a.KvALayerNorm.Eps, cos, sin, rotary.Interleave, layerCache, cols, cursor)); // (B, S, r + dr)
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
