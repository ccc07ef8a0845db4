// Fused kernels for the training step's small ops (forward and backward), where the captured bf16 step still runs
// dozens of elementwise kernels per layer that torch.compile fuses:
//   mla qkv forward    MLA's attention operands from the up-projections, one pass: Q = [q_nope, rope(q_rope)] (times the
//                      query prescale), K = [k_nope, rope(k_rope) broadcast over heads], V = v zero-padded to the
//                      attention's value width, all three written (B, h, T, .) contiguous for SDPA. The rotation rounds
//                      like the eager ops (cos, sin, every product and sum rounded to the activation dtype: bit for bit
//                      the plain ops' result). Replaces the rotary ops twice, the expand, two cats, the prescale and the
//                      value padding: ~21 kernels -> 1.
//   mla qkv backward   the same map's transpose: dq = [dQ_nope, rope^T(dQ_rope)] (times the prescale), dkv =
//                      [dK_nope, dV unpadded], dk_rope = sum over heads of rope^T(dK_rope) in fp32 (one rounding).
//                      dQ, dK, dV may be strided (unit stride in the last dim): SDPA's gradients are used as they come.
//   moe combine        y[n] = sum_j w[n, j] ys[pos[n, j]] in fp32, one rounding: the routed experts' outputs weighted
//                      and summed per token as a gather (deterministic, no fp32 (N k, H) product, no atomics).
//                      Backward in one pass per token: dys[pos[n, j]] = dy[n] w[n, j] (rounded) and dw[n, j] =
//                      <ys[pos[n, j]], dy[n]> in fp32. Replaces index_select, the promoting multiply, zeros, index_add
//                      and the cast (and their backward: ~8 kernels) with one kernel each way.
//   moe gather sum     dx[n] = sum_j dxs[pos[n, j]] in fp32, one rounding: the backward of the dispatch (x gathered into
//                      expert order), replacing an index_add with bf16 atomics.
// pos (N, k) int64 is the row of token n's j-th choice in the expert-sorted order (the inverse of the sort's order).
// Same C ABI conventions as posttrain_kernels.cu (outputs allocated by the caller, 0 or -1 with ptk_last_error()).
// PostTrain checks each against its torch formulas on the device before first use (PostTrain.Core.Kernels.TrainKernels)
// and keeps the plain ops for any that disagree.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "ptk_common.cuh"

namespace {
using ptk::block_sum;
using ptk::check_launch;
using ptk::dispatch;
using ptk::from_f;
using ptk::guarded;
using ptk::is_activation;
using ptk::require;
using ptk::rnd;
using ptk::rope_pair;
using ptk::strided_arg;
using ptk::to_f;

// Element i of rope(x) for a rope part x of `dim` values (halves, or interleaved pairs laid out evens-then-odds),
// rounded after every op in T as the eager ops round; c, s: the angle tables of the row.
template <typename T>
__device__ __forceinline__ float rope_at(const T* x, int i, int dim, bool interleave, const float* c, const float* s) {
  const int half = dim / 2;
  const int j = i < half ? i : i - half;
  const float2 y = rope_pair<T>(to_f(interleave ? x[2 * j] : x[j]), to_f(interleave ? x[2 * j + 1] : x[j + half]), c[j], s[j]);
  return i < half ? y.x : y.y;
}

// Element i (in the input layout) of rope^T(g) for a gradient g of the rotated layout, in fp32: with g1, g2 the halves,
// dx1 = g1 c + g2 s, dx2 = g2 c - g1 s (c, s rounded to T as in the forward); interleaved inputs take dx1, dx2 as pairs.
// G(m) reads element m of g.
template <typename T, typename G>
__device__ __forceinline__ float rope_t_at(G g, int i, int dim, bool interleave, const float* c, const float* s) {
  const int half = dim / 2;
  const int j = interleave ? i / 2 : (i < half ? i : i - half);
  const bool first = interleave ? (i % 2 == 0) : (i < half);
  const float g1 = g(j), g2 = g(j + half);
  const float cb = rnd<T>(c[j]), sb = rnd<T>(s[j]);
  return first ? __fadd_rn(__fmul_rn(g1, cb), __fmul_rn(g2, sb)) : __fsub_rn(__fmul_rn(g2, cb), __fmul_rn(g1, sb));
}

struct MlaShape {
  int heads, steps, nope, rope, vdim, vout;
  long cos_sb;  // cos/sin batch stride: T * rope / 2, or 0 when broadcast over the batch
};

// One block per token (b, t).
template <typename T>
__global__ void mla_qkv_forward_kernel(const T* __restrict__ q, const T* __restrict__ kv, const T* __restrict__ kr, long kr_sb,
                                       long kr_st, const float* __restrict__ cosv, const float* __restrict__ sinv, MlaShape d,
                                       float prescale, bool scaled, bool interleave, T* __restrict__ Q, T* __restrict__ K,
                                       T* __restrict__ V) {
  const long token = blockIdx.x;  // b * steps + t
  const long b = token / d.steps;
  const int t = static_cast<int>(token % d.steps);
  const int qk = d.nope + d.rope, kvw = d.nope + d.vdim, half = d.rope / 2;
  const float* c = cosv + b * d.cos_sb + static_cast<long>(t) * half;
  const float* s = sinv + b * d.cos_sb + static_cast<long>(t) * half;
  const T* krow = kr + b * kr_sb + t * kr_st;
  for (int i = threadIdx.x; i < d.heads * qk; i += blockDim.x) {
    const int h = i / qk, col = i % qk;
    const T* qrow = q + (token * d.heads + h) * qk;
    float v = col < d.nope ? to_f(qrow[col]) : rope_at<T>(qrow + d.nope, col - d.nope, d.rope, interleave, c, s);
    if (scaled) v = __fmul_rn(v, prescale);
    const long out = ((b * d.heads + h) * d.steps + t) * qk + col;
    Q[out] = from_f<T>(v);
    const T* kvrow = kv + (token * d.heads + h) * kvw;
    K[out] = col < d.nope ? kvrow[col] : from_f<T>(rope_at<T>(krow, col - d.nope, d.rope, interleave, c, s));
  }
  for (int i = threadIdx.x; i < d.heads * d.vout; i += blockDim.x) {
    const int h = i / d.vout, col = i % d.vout;
    V[((b * d.heads + h) * d.steps + t) * d.vout + col] = col < d.vdim ? kv[(token * d.heads + h) * kvw + d.nope + col] : from_f<T>(0.f);
  }
}

struct Strided4 {  // (B, h, T, .) with unit stride in the last dim
  long sb, sh, st;
};

// One block per token (b, t).
template <typename T>
__global__ void mla_qkv_backward_kernel(const T* __restrict__ dQ, Strided4 sq, const T* __restrict__ dK, Strided4 sk,
                                        const T* __restrict__ dV, Strided4 sv, const float* __restrict__ cosv,
                                        const float* __restrict__ sinv, MlaShape d, float prescale, bool scaled,
                                        bool interleave, T* __restrict__ dq, T* __restrict__ dkv, T* __restrict__ dkr) {
  const long token = blockIdx.x;
  const long b = token / d.steps;
  const int t = static_cast<int>(token % d.steps);
  const int qk = d.nope + d.rope, kvw = d.nope + d.vdim, half = d.rope / 2;
  const float* c = cosv + b * d.cos_sb + static_cast<long>(t) * half;
  const float* s = sinv + b * d.cos_sb + static_cast<long>(t) * half;
  for (int i = threadIdx.x; i < d.heads * qk; i += blockDim.x) {
    const int h = i / qk, col = i % qk;
    const T* g = dQ + b * sq.sb + h * sq.sh + t * sq.st;
    // dqFull = dQ * prescale, rounded as the eager multiply rounds it.
    auto G = [&](int m) { const float v = to_f(g[m]); return scaled ? rnd<T>(__fmul_rn(v, prescale)) : v; };
    const float v = col < d.nope ? G(col) : rope_t_at<T>([&](int m) { return G(d.nope + m); }, col - d.nope, d.rope, interleave, c, s);
    dq[(token * d.heads + h) * qk + col] = from_f<T>(v);
  }
  for (int i = threadIdx.x; i < d.heads * kvw; i += blockDim.x) {
    const int h = i / kvw, col = i % kvw;
    dkv[(token * d.heads + h) * kvw + col] =
        col < d.nope ? dK[b * sk.sb + h * sk.sh + t * sk.st + col] : dV[b * sv.sb + h * sv.sh + t * sv.st + (col - d.nope)];
  }
  for (int i = threadIdx.x; i < d.rope; i += blockDim.x) {
    float acc = 0.f;
    for (int h = 0; h < d.heads; h++) {
      const T* g = dK + b * sk.sb + h * sk.sh + t * sk.st + d.nope;
      acc = __fadd_rn(acc, rope_t_at<T>([&](int m) { return to_f(g[m]); }, i, d.rope, interleave, c, s));
    }
    dkr[token * d.rope + i] = from_f<T>(acc);
  }
}

constexpr int kMaxTopK = 64;

// One block per token n: y[n] = sum_j w[n, j] ys[pos[n, j]].
template <typename T>
__global__ void moe_combine_kernel(const T* __restrict__ ys, const float* __restrict__ w, const long* __restrict__ pos,
                                   T* __restrict__ y, int hidden, int k) {
  __shared__ long rows[kMaxTopK];
  __shared__ float ws[kMaxTopK];
  const long n = blockIdx.x;
  if (threadIdx.x < k) {
    rows[threadIdx.x] = pos[n * k + threadIdx.x];
    ws[threadIdx.x] = w[n * k + threadIdx.x];
  }
  __syncthreads();
  for (int h = threadIdx.x; h < hidden; h += blockDim.x) {
    float acc = 0.f;
    for (int j = 0; j < k; j++) acc = __fadd_rn(acc, __fmul_rn(to_f(ys[rows[j] * hidden + h]), ws[j]));
    y[n * hidden + h] = from_f<T>(acc);
  }
}

// One block per token n: dys[pos[n, j]] = dy[n] w[n, j], dw[n, j] = <ys[pos[n, j]], dy[n]>.
template <typename T>
__global__ void moe_combine_backward_kernel(const T* __restrict__ dy, const T* __restrict__ ys, const float* __restrict__ w,
                                            const long* __restrict__ pos, T* __restrict__ dys, float* __restrict__ dw,
                                            int hidden, int k) {
  __shared__ float shared[32];
  const long n = blockIdx.x;
  const T* g = dy + n * hidden;
  for (int j = 0; j < k; j++) {
    const long r = pos[n * k + j];
    const float wj = w[n * k + j];
    float dot = 0.f;
    for (int h = threadIdx.x; h < hidden; h += blockDim.x) {
      const float gv = to_f(g[h]);
      dys[r * hidden + h] = from_f<T>(__fmul_rn(gv, wj));
      dot = __fadd_rn(dot, __fmul_rn(to_f(ys[r * hidden + h]), gv));
    }
    dot = block_sum(dot, shared);
    if (threadIdx.x == 0) dw[n * k + j] = dot;
  }
}

// One block per token n: dx[n] = sum_j dxs[pos[n, j]].
template <typename T>
__global__ void moe_gather_sum_kernel(const T* __restrict__ dxs, const long* __restrict__ pos, T* __restrict__ dx, int hidden, int k) {
  __shared__ long rows[kMaxTopK];
  const long n = blockIdx.x;
  if (threadIdx.x < k) rows[threadIdx.x] = pos[n * k + threadIdx.x];
  __syncthreads();
  for (int h = threadIdx.x; h < hidden; h += blockDim.x) {
    float acc = 0.f;
    for (int j = 0; j < k; j++) acc = __fadd_rn(acc, to_f(dxs[rows[j] * hidden + h]));
    dx[n * hidden + h] = from_f<T>(acc);
  }
}

const at::Tensor& T_(void* h, const char* name) { return ptk::tensor_arg(h, name); }

Strided4 strides_of(const at::Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2)}; }

long cos_batch_stride(const at::Tensor& c, const at::Tensor& s, long B, long T, int rope) {
  require(c.scalar_type() == c10::ScalarType::Float && s.scalar_type() == c10::ScalarType::Float, "cos/sin: not float32");
  require(c.dim() == 4 && c.size(1) == 1 && c.size(2) == T && c.size(3) == rope / 2 && (c.size(0) == B || c.size(0) == 1)
              && s.sizes() == c.sizes(),
          "cos/sin: shape must be (B or 1, 1, T, rope/2)");
  return c.size(0) == 1 ? 0 : T * (rope / 2);
}

constexpr int kThreads = 256;
}  // namespace

extern "C" {

// q (B, T, h (nope + rope)), kv (B, T, h (nope + vdim)) contiguous; kr (B, T, rope) unit stride in the last dim (k's
// rope part, a narrow of kv_a_proj's output); cos, sin (B or 1, 1, T, rope/2) float32 -> Q, K (B, h, T, nope + rope),
// V (B, h, T, vout >= vdim) contiguous, all in q's dtype.
int ptk_mla_qkv_forward(void* qh, void* kvh, void* krh, void* ch, void* sh, int heads, int nope, int rope, int vdim,
                        double prescale, int interleave, void* Qh, void* Kh, void* Vh) {
  return guarded([&] {
    const auto& q = T_(qh, "q");
    const auto& kv = T_(kvh, "kv");
    const auto& kr = strided_arg(krh, "k_rope", 3);
    const auto& c = T_(ch, "cos");
    const auto& s = T_(sh, "sin");
    const auto& Q = T_(Qh, "Q");
    const auto& K = T_(Kh, "K");
    const auto& V = T_(Vh, "V");
    require(heads > 0 && nope >= 0 && rope > 0 && rope % 2 == 0 && vdim > 0, "mla_qkv_forward: bad head dims");
    require(q.dim() == 3 && kv.dim() == 3, "mla_qkv_forward: q and kv must be (B, T, features)");
    const long B = q.size(0), T = q.size(1), qk = nope + rope;
    require(is_activation(q) && kv.scalar_type() == q.scalar_type() && kr.scalar_type() == q.scalar_type()
                && Q.scalar_type() == q.scalar_type() && K.scalar_type() == q.scalar_type() && V.scalar_type() == q.scalar_type(),
            "mla_qkv_forward: q, kv, k_rope, Q, K, V must share one float32 / bfloat16 dtype");
    require(q.size(2) == heads * qk && kv.size(0) == B && kv.size(1) == T && kv.size(2) == heads * (nope + vdim),
            "mla_qkv_forward: q / kv widths");
    require(kr.size(0) == B && kr.size(1) == T && kr.size(2) == rope, "mla_qkv_forward: k_rope shape");
    require(Q.dim() == 4 && Q.size(0) == B && Q.size(1) == heads && Q.size(2) == T && Q.size(3) == qk && K.sizes() == Q.sizes(),
            "mla_qkv_forward: Q / K shape");
    require(V.dim() == 4 && V.size(0) == B && V.size(1) == heads && V.size(2) == T && V.size(3) >= vdim, "mla_qkv_forward: V shape");
    const MlaShape d{heads, static_cast<int>(T), nope, rope, vdim, static_cast<int>(V.size(3)), cos_batch_stride(c, s, B, T, rope)};
    if (B * T == 0) return;
    c10::cuda::CUDAGuard guard(q.device());
    auto stream = c10::cuda::getCurrentCUDAStream();
    dispatch(q.scalar_type(), [&](auto tag) {
      using TT = decltype(tag);
      mla_qkv_forward_kernel<TT><<<static_cast<unsigned>(B * T), kThreads, 0, stream>>>(
          static_cast<const TT*>(q.data_ptr()), static_cast<const TT*>(kv.data_ptr()), static_cast<const TT*>(kr.data_ptr()),
          kr.stride(0), kr.stride(1), c.data_ptr<float>(), s.data_ptr<float>(), d, static_cast<float>(prescale), prescale != 1.0,
          interleave != 0, static_cast<TT*>(Q.data_ptr()), static_cast<TT*>(K.data_ptr()), static_cast<TT*>(V.data_ptr()));
    });
    check_launch("mla_qkv_forward");
  });
}

// dQ, dK (B, h, T, nope + rope), dV (B, h, T, vout): any strides, unit stride in the last dim; cos, sin as in the
// forward -> dq (B, T, h (nope + rope)), dkv (B, T, h (nope + vdim)), dkr (B, T, rope) contiguous, in dQ's dtype.
int ptk_mla_qkv_backward(void* dQh, void* dKh, void* dVh, void* ch, void* sh, int nope, int vdim, double prescale,
                         int interleave, void* dqh, void* dkvh, void* dkrh) {
  return guarded([&] {
    const auto& dQ = strided_arg(dQh, "dQ", 4);
    const auto& dK = strided_arg(dKh, "dK", 4);
    const auto& dV = strided_arg(dVh, "dV", 4);
    const auto& c = T_(ch, "cos");
    const auto& s = T_(sh, "sin");
    const auto& dq = T_(dqh, "dq");
    const auto& dkv = T_(dkvh, "dkv");
    const auto& dkr = T_(dkrh, "dkr");
    const long B = dQ.size(0), heads = dQ.size(1), T = dQ.size(2), qk = dQ.size(3), rope = qk - nope;
    require(nope >= 0 && rope > 0 && rope % 2 == 0 && vdim > 0, "mla_qkv_backward: bad head dims");
    require(is_activation(dQ) && dK.scalar_type() == dQ.scalar_type() && dV.scalar_type() == dQ.scalar_type()
                && dq.scalar_type() == dQ.scalar_type() && dkv.scalar_type() == dQ.scalar_type() && dkr.scalar_type() == dQ.scalar_type(),
            "mla_qkv_backward: dQ, dK, dV, dq, dkv, dkr must share one float32 / bfloat16 dtype");
    require(dK.sizes() == dQ.sizes() && dV.size(0) == B && dV.size(1) == heads && dV.size(2) == T && dV.size(3) >= vdim,
            "mla_qkv_backward: dK / dV shape");
    require(dq.numel() == B * T * heads * qk && dkv.numel() == B * T * heads * (nope + vdim) && dkr.numel() == B * T * rope,
            "mla_qkv_backward: output sizes");
    const MlaShape d{static_cast<int>(heads), static_cast<int>(T), nope, static_cast<int>(rope), vdim, static_cast<int>(dV.size(3)),
                     cos_batch_stride(c, s, B, T, static_cast<int>(rope))};
    if (B * T == 0) return;
    c10::cuda::CUDAGuard guard(dQ.device());
    auto stream = c10::cuda::getCurrentCUDAStream();
    dispatch(dQ.scalar_type(), [&](auto tag) {
      using TT = decltype(tag);
      mla_qkv_backward_kernel<TT><<<static_cast<unsigned>(B * T), kThreads, 0, stream>>>(
          static_cast<const TT*>(dQ.data_ptr()), strides_of(dQ), static_cast<const TT*>(dK.data_ptr()), strides_of(dK),
          static_cast<const TT*>(dV.data_ptr()), strides_of(dV), c.data_ptr<float>(), s.data_ptr<float>(), d,
          static_cast<float>(prescale), prescale != 1.0, interleave != 0, static_cast<TT*>(dq.data_ptr()),
          static_cast<TT*>(dkv.data_ptr()), static_cast<TT*>(dkr.data_ptr()));
    });
    check_launch("mla_qkv_backward");
  });
}

// ys (R, H), w (N, k) float32, pos (N, k) int64 with values in [0, R) -> y (N, H) in ys's dtype.
int ptk_moe_combine(void* ysh, void* wh, void* posh, void* yh) {
  return guarded([&] {
    const auto& ys = T_(ysh, "ys");
    const auto& w = T_(wh, "w");
    const auto& pos = T_(posh, "pos");
    const auto& y = T_(yh, "y");
    require(ys.dim() == 2 && is_activation(ys) && y.scalar_type() == ys.scalar_type(), "moe_combine: ys (R, H) float32 / bfloat16, y its dtype");
    require(w.scalar_type() == c10::ScalarType::Float && pos.scalar_type() == c10::ScalarType::Long && w.dim() == 2
                && pos.sizes() == w.sizes() && w.size(1) <= kMaxTopK,
            "moe_combine: w (N, k) float32 and pos (N, k) int64, k <= 64");
    const long N = w.size(0), H = ys.size(1), k = w.size(1);
    require(y.dim() == 2 && y.size(0) == N && y.size(1) == H, "moe_combine: y shape");
    if (N == 0) return;
    c10::cuda::CUDAGuard guard(ys.device());
    auto stream = c10::cuda::getCurrentCUDAStream();
    dispatch(ys.scalar_type(), [&](auto tag) {
      using TT = decltype(tag);
      moe_combine_kernel<TT><<<static_cast<unsigned>(N), kThreads, 0, stream>>>(
          static_cast<const TT*>(ys.data_ptr()), w.data_ptr<float>(), pos.data_ptr<int64_t>(), static_cast<TT*>(y.data_ptr()),
          static_cast<int>(H), static_cast<int>(k));
    });
    check_launch("moe_combine");
  });
}

// dy (N, H), ys (R, H), w and pos (N, k) -> dys (R, H) (rows not in pos are left as they are), dw (N, k) float32.
int ptk_moe_combine_backward(void* dyh, void* ysh, void* wh, void* posh, void* dysh, void* dwh) {
  return guarded([&] {
    const auto& dy = T_(dyh, "dy");
    const auto& ys = T_(ysh, "ys");
    const auto& w = T_(wh, "w");
    const auto& pos = T_(posh, "pos");
    const auto& dys = T_(dysh, "dys");
    const auto& dw = T_(dwh, "dw");
    require(ys.dim() == 2 && is_activation(ys) && dy.scalar_type() == ys.scalar_type() && dys.scalar_type() == ys.scalar_type(),
            "moe_combine_backward: dy, ys, dys must share one float32 / bfloat16 dtype");
    require(w.scalar_type() == c10::ScalarType::Float && dw.scalar_type() == c10::ScalarType::Float
                && pos.scalar_type() == c10::ScalarType::Long && w.dim() == 2 && pos.sizes() == w.sizes() && dw.sizes() == w.sizes()
                && w.size(1) <= kMaxTopK,
            "moe_combine_backward: w, dw (N, k) float32 and pos (N, k) int64, k <= 64");
    const long N = w.size(0), H = ys.size(1), k = w.size(1);
    require(dy.dim() == 2 && dy.size(0) == N && dy.size(1) == H && dys.sizes() == ys.sizes(), "moe_combine_backward: shapes");
    if (N == 0) return;
    c10::cuda::CUDAGuard guard(ys.device());
    auto stream = c10::cuda::getCurrentCUDAStream();
    dispatch(ys.scalar_type(), [&](auto tag) {
      using TT = decltype(tag);
      moe_combine_backward_kernel<TT><<<static_cast<unsigned>(N), kThreads, 0, stream>>>(
          static_cast<const TT*>(dy.data_ptr()), static_cast<const TT*>(ys.data_ptr()), w.data_ptr<float>(),
          pos.data_ptr<int64_t>(), static_cast<TT*>(dys.data_ptr()), dw.data_ptr<float>(), static_cast<int>(H), static_cast<int>(k));
    });
    check_launch("moe_combine_backward");
  });
}

// dxs (R, H), pos (N, k) int64 -> dx (N, H) in dxs's dtype.
int ptk_moe_gather_sum(void* dxsh, void* posh, void* dxh) {
  return guarded([&] {
    const auto& dxs = T_(dxsh, "dxs");
    const auto& pos = T_(posh, "pos");
    const auto& dx = T_(dxh, "dx");
    require(dxs.dim() == 2 && is_activation(dxs) && dx.scalar_type() == dxs.scalar_type(), "moe_gather_sum: dxs (R, H) float32 / bfloat16, dx its dtype");
    require(pos.scalar_type() == c10::ScalarType::Long && pos.dim() == 2 && pos.size(1) <= kMaxTopK, "moe_gather_sum: pos (N, k) int64, k <= 64");
    const long N = pos.size(0), H = dxs.size(1), k = pos.size(1);
    require(dx.dim() == 2 && dx.size(0) == N && dx.size(1) == H, "moe_gather_sum: dx shape");
    if (N == 0) return;
    c10::cuda::CUDAGuard guard(dxs.device());
    auto stream = c10::cuda::getCurrentCUDAStream();
    dispatch(dxs.scalar_type(), [&](auto tag) {
      using TT = decltype(tag);
      moe_gather_sum_kernel<TT><<<static_cast<unsigned>(N), kThreads, 0, stream>>>(
          static_cast<const TT*>(dxs.data_ptr()), pos.data_ptr<int64_t>(), static_cast<TT*>(dx.data_ptr()), static_cast<int>(H),
          static_cast<int>(k));
    });
    check_launch("moe_gather_sum");
  });
}

}  // extern "C"
