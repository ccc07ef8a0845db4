// Fused kernels for the decode step (CUDA-graph rollouts), where one step of bench-moe is ~70 small kernels per layer:
//   rope            out = [x1 c - x2 s, x2 c + x1 s] over the last dim (halves, or interleaved pairs laid out
//                   evens-then-odds), c, s = cos, sin rounded to x's dtype, every product and sum rounded to x's dtype as
//                   the eager ops round them (so bfloat16 results equal the eager ones bit for bit); x may be a strided
//                   view (B, h, T, d) with unit stride in d (q's rope part is a narrow of q). 9 kernels -> 1.
//   masked softmax  p = softmax(float(score) * scale + bias) over S, in fp32, written in the scores' dtype; scores
//                   (B, h, T, S), bias (B, 1, T, S) float32 broadcast over heads. 5 kernels -> 1.
//   router select   DeepSeek-V3 routing of one token per warp from the router's fp32 logits: scores = sigmoid(logits),
//                   choice = scores + correction bias, group score = sum of the group's top-2 choices, the best
//                   topk_group groups kept, top-k experts of those, weights = scores at the experts, divided by their
//                   sum (+1e-20) when normalising, times the scaling factor. Indices come out in descending choice order
//                   (ties: the lower expert); the model's top-k leaves the order unspecified, and every user of the
//                   indices (the combine below, the routing record) is order-free. ~16 kernels -> 1.
//   combine silu    h[n, e, :] = bf(bf(silu(g) u) * bf(w_ne)) for the all-experts decode FFN, gu (N, E, 2, I) holding
//                   each expert's [gate; up] rows, w_ne the token's routing weight for expert e (0 when not chosen);
//                   the same two roundings as the fused SwiGLU kernel followed by the eager multiply. 5 kernels -> 1.
//   latent append   the MLA key side of a decode step into the latent cache: for each row b and new step t, the latent
//                   part of ckv (r values) RMS-normalised and scaled by the norm weight (fp32 math, one rounding, as
//                   the fused RMSNorm kernel), the rope part (dr values) rotated as by `rope` above, both written to
//                   cache[b, column t] where column t = columns[t] (the static step's device columns) or cursor + t.
//                   Replaces a contiguous copy, the norm, the rotary ops, a cat and the cache write. 5 kernels -> 1.
//   sample race     temperature sampling without filters, as Generation.Sampler does it: per row the log-softmax
//                   stats of logits / T, the uniforms of CounterRng (seed, row key, step, token: the same integer hash,
//                   so the same bits), then argmax over tokens of softmax_i / (-log u_i) (ties: the lower token) and
//                   the chosen token's log-prob. The step comes from the device (a captured step) or the host. Replaces
//                   ~30 kernels over (B, V) int64/fp32 arrays.
// Same C ABI conventions as posttrain_kernels.cu (outputs allocated by the caller, 0 or -1 with ptk_last_error()).
// PostTrain checks them against its plain ops on the device before first use (PostTrain.Core.Kernels.DecodeKernels)
// and keeps the plain ops when the library lacks them or they disagree.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "ptk_common.cuh"

namespace {
using ptk::block_sum;
using ptk::check_launch;
using ptk::dispatch;
using ptk::from_f;
using ptk::grid_for;
using ptk::guarded;
using ptk::is_activation;
using ptk::require;
using ptk::to_f;

using ptk::rnd;
using ptk::rope_pair;

template <typename T>
__global__ void rope_kernel(const T* __restrict__ x, long sb, long sh, long st, const float* __restrict__ cosv,
                            const float* __restrict__ sinv, T* __restrict__ out, int heads, int steps, int dim,
                            bool interleave, long total) {
  const int half = dim / 2;
  for (long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; i < total; i += static_cast<long>(gridDim.x) * blockDim.x) {
    const int j = static_cast<int>(i % half);  // pair index
    long rest = i / half;
    const int t = static_cast<int>(rest % steps);
    rest /= steps;
    const int hd = static_cast<int>(rest % heads);
    const long b = rest / heads;
    const T* xr = x + b * sb + hd * sh + t * st;
    const float x1 = to_f(interleave ? xr[2 * j] : xr[j]);
    const float x2 = to_f(interleave ? xr[2 * j + 1] : xr[j + half]);
    const long angle = (b * steps + t) * half + j;  // cos/sin (B, 1, T, d/2)
    const float2 y = rope_pair<T>(x1, x2, cosv[angle], sinv[angle]);
    T* o = out + ((b * heads + hd) * steps + t) * dim;
    o[j] = from_f<T>(y.x);
    o[j + half] = from_f<T>(y.y);
  }
}

// Max over the block (shared holds 32 floats); every thread gets the result.
__device__ float block_max(float v, float* shared) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = threadIdx.x < warps ? shared[threadIdx.x] : -INFINITY;
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if (threadIdx.x == 0) shared[0] = v;
  __syncthreads();
  const float total = shared[0];
  __syncthreads();
  return total;
}

// One block per (b, head, t) row of S scores; the row's values stay in registers/shared between the passes.
template <typename T>
__global__ void masked_softmax_kernel(const T* __restrict__ scores, const float* __restrict__ bias, T* __restrict__ probs,
                                      int heads, int steps, int cols, float scale) {
  extern __shared__ float row[];  // cols floats, then 32 for the reductions
  float* shared = row + cols;
  const long r = blockIdx.x;  // ((b * heads + h) * steps + t)
  const int t = static_cast<int>(r % steps);
  const long b = r / (static_cast<long>(heads) * steps);
  const T* sr = scores + r * cols;
  const float* br = bias + (b * steps + t) * cols;
  float m = -INFINITY;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) {
    const float v = __fadd_rn(__fmul_rn(to_f(sr[i]), scale), br[i]);
    row[i] = v;
    m = fmaxf(m, v);
  }
  m = block_max(m, shared);
  float sum = 0.f;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) {
    const float e = expf(row[i] - m);
    row[i] = e;
    sum += e;
  }
  sum = block_sum(sum, shared);
  T* pr = probs + r * cols;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) pr[i] = from_f<T>(row[i] / sum);
}

constexpr int kMaxExperts = 512;

// One warp per token. Shared memory per warp: E choice values and E scores.
__global__ void router_select_kernel(const float* __restrict__ logits, const float* __restrict__ bias, float* __restrict__ scores,
                                     long* __restrict__ indices, float* __restrict__ weights, long tokens, int experts,
                                     int groups, int topk_group, int k, bool normalize, float scaling) {
  extern __shared__ float smem[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  float* choice = smem + warp * 2 * experts;
  float* score = choice + experts;
  for (long n = static_cast<long>(blockIdx.x) * warps + warp; n < tokens; n += static_cast<long>(gridDim.x) * warps) {
    const float* lr = logits + n * experts;
    for (int e = lane; e < experts; e += 32) {
      const float s = 1.f / (1.f + expf(-lr[e]));
      score[e] = s;
      scores[n * experts + e] = s;
      choice[e] = bias != nullptr ? s + bias[e] : s;
    }
    __syncwarp();
    if (groups > 1) {
      // Lane g scores group g (sum of its top-2 choices); lane 0 keeps the best topk_group groups and masks the rest.
      const int per = experts / groups;
      float gs = -INFINITY;
      if (lane < groups) {
        float a = -INFINITY, c = -INFINITY;
        for (int e = lane * per; e < (lane + 1) * per; e++) {
          const float v = choice[e];
          if (v > a) { c = a; a = v; } else if (v > c) c = v;
        }
        gs = per >= 2 ? a + c : a;
      }
      unsigned keep = 0;
      for (int round = 0; round < topk_group; round++) {
        float best = lane < groups && !(keep >> lane & 1u) ? gs : -INFINITY;
        int at = lane < groups && !(keep >> lane & 1u) ? lane : 1 << 30;
        for (int o = 16; o > 0; o >>= 1) {
          const float ob = __shfl_xor_sync(0xffffffffu, best, o);
          const int oa = __shfl_xor_sync(0xffffffffu, at, o);
          if (ob > best || (ob == best && oa < at)) { best = ob; at = oa; }
        }
        if (at < groups) keep |= 1u << at;
      }
      for (int e = lane; e < experts; e += 32)
        if (!(keep >> (e / per) & 1u)) choice[e] = -INFINITY;
      __syncwarp();
    }
    float total = 0.f;
    for (int j = 0; j < k; j++) {
      float best = -INFINITY;
      int at = 1 << 30;
      for (int e = lane; e < experts; e += 32)
        if (choice[e] > best || (choice[e] == best && e < at)) { best = choice[e]; at = e; }
      for (int o = 16; o > 0; o >>= 1) {
        const float ob = __shfl_xor_sync(0xffffffffu, best, o);
        const int oa = __shfl_xor_sync(0xffffffffu, at, o);
        if (ob > best || (ob == best && oa < at)) { best = ob; at = oa; }
      }
      if (at >= experts) at = 0;  // fewer finite choices than k: cannot happen with k <= topk_group * per
      __syncwarp();
      if (lane == 0) {
        indices[n * k + j] = at;
        weights[n * k + j] = score[at];
        choice[at] = -INFINITY;
      }
      total += score[at];
      __syncwarp();
    }
    if (lane == 0)
      for (int j = 0; j < k; j++) {
        float w = weights[n * k + j];
        if (normalize) w = w / (total + 1e-20f);
        weights[n * k + j] = w * scaling;
      }
    __syncwarp();
  }
}

template <typename T>
__global__ void combine_silu_kernel(const T* __restrict__ gu, const long* __restrict__ indices, const float* __restrict__ weights,
                                    T* __restrict__ h, int experts, int inter, int k, long total) {
  for (long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; i < total; i += static_cast<long>(gridDim.x) * blockDim.x) {
    const int c = static_cast<int>(i % inter);
    const long ne = i / inter;  // n * experts + e
    const int e = static_cast<int>(ne % experts);
    const long n = ne / experts;
    float w = 0.f;
    for (int j = 0; j < k; j++)
      if (indices[n * k + j] == e) w = weights[n * k + j];
    const float a = to_f(gu[(ne * 2) * inter + c]);
    const float b = to_f(gu[(ne * 2 + 1) * inter + c]);
    const float s = 1.f / (1.f + __expf(-a));
    h[i] = from_f<T>(__fmul_rn(rnd<T>(a * s * b), rnd<T>(w)));
  }
}

// One block per (b, t). Latent: sum of squares over r, then y = (x * rstd) * w. Rope: threads < dr/2 rotate one pair.
template <typename T, typename W>
__global__ void latent_append_kernel(const T* __restrict__ ckv, const W* __restrict__ w, const float* __restrict__ cosv,
                                     const float* __restrict__ sinv, T* __restrict__ cache, const long* __restrict__ columns,
                                     long cursor, int steps, long capacity, int r, int dr, float eps, bool interleave) {
  __shared__ float shared[32];
  const long bt = blockIdx.x;  // b * steps + t
  const int t = static_cast<int>(bt % steps);
  const long b = bt / steps;
  const int width = r + dr;
  const T* in = ckv + bt * width;
  const long column = columns != nullptr ? columns[t] : cursor + t;
  T* out = cache + (b * capacity + column) * width;
  float ss = 0.f;
  for (int i = threadIdx.x; i < r; i += blockDim.x) {
    const float v = to_f(in[i]);
    ss += v * v;
  }
  const float rstd = rsqrtf(block_sum(ss, shared) / r + eps);
  for (int i = threadIdx.x; i < r; i += blockDim.x) out[i] = from_f<T>(to_f(in[i]) * rstd * to_f(w[i]));
  const int half = dr / 2;
  for (int j = threadIdx.x; j < half; j += blockDim.x) {
    const float x1 = to_f(interleave ? in[r + 2 * j] : in[r + j]);
    const float x2 = to_f(interleave ? in[r + 2 * j + 1] : in[r + j + half]);
    const float2 y = rope_pair<T>(x1, x2, cosv[bt * half + j], sinv[bt * half + j]);
    out[r + j] = from_f<T>(y.x);
    out[r + j + half] = from_f<T>(y.y);
  }
}

__device__ __forceinline__ unsigned mix32(unsigned h) {
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return h;
}

// One block per row. Three passes over the row: max, sum of exp, then the exponential race.
__global__ void sample_race_kernel(const float* __restrict__ logits, const long* __restrict__ row_keys, const long* __restrict__ step,
                                   long host_step, unsigned lo, unsigned hi, unsigned s1, float temperature, bool scale,
                                   long* __restrict__ tokens, float* __restrict__ log_probs, int vocab) {
  __shared__ float shared[32];
  __shared__ float best_v[32];
  __shared__ int best_i[32];
  const long row = blockIdx.x;
  const float* z = logits + row * vocab;
  const unsigned st = mix32(static_cast<unsigned>(step != nullptr ? step[0] : host_step) * 0x27D4EB2Fu + hi);
  const unsigned k = mix32(static_cast<unsigned>(row_keys[row]) * 0x9E3779B1u + (lo ^ st));
  float m = -INFINITY;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) m = fmaxf(m, scale ? __fdiv_rn(z[i], temperature) : z[i]);
  m = block_max(m, shared);
  float sum = 0.f;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) sum += expf((scale ? __fdiv_rn(z[i], temperature) : z[i]) - m);
  sum = block_sum(sum, shared);
  float bv = -INFINITY;
  int bi = 0x7fffffff;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float x = scale ? __fdiv_rn(z[i], temperature) : z[i];
    const unsigned h = mix32(mix32(k * 0x85EBCA77u + static_cast<unsigned>(i)) + s1);
    const float u = (static_cast<float>(h >> 8) + 0.5f) * (1.f / 16777216.f);
    const float r = __fdiv_rn(__fdiv_rn(expf(x - m), sum), -logf(u));
    if (r > bv || (r == bv && i < bi)) { bv = r; bi = i; }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  if (lane == 0) { best_v[warp] = bv; best_i[warp] = bi; }
  __syncthreads();
  if (warp == 0) {
    bv = lane < warps ? best_v[lane] : -INFINITY;
    bi = lane < warps ? best_i[lane] : 0x7fffffff;
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
      if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
    }
    if (lane == 0) {
      const int t = bi < vocab ? bi : 0;
      tokens[row] = t;
      const float x = scale ? __fdiv_rn(z[t], temperature) : z[t];
      log_probs[row] = (x - m) - logf(sum);
    }
  }
}

const at::Tensor& T_(void* handle, const char* name) { return ptk::tensor_arg(handle, name); }

}  // namespace

extern "C" {

// x (B, h, T, d): any strides in B, h, T, unit stride in d; cos, sin (B, 1, T, d/2) float32 contiguous;
// out (B, h, T, d) contiguous in x's dtype.
int ptk_rope(void* xh, void* ch, void* sh, void* oh, int interleave) {
  return guarded([&] {
    const auto& x = ptk::strided_arg(xh, "rope: x (B, h, T, d)", 4);
    const auto& c = T_(ch, "cos");
    const auto& s = T_(sh, "sin");
    const auto& out = T_(oh, "out");
    const long B = x.size(0), H = x.size(1), T = x.size(2), D = x.size(3);
    require(is_activation(x) && out.scalar_type() == x.scalar_type() && c.scalar_type() == c10::ScalarType::Float
                && s.scalar_type() == c10::ScalarType::Float, "rope: dtypes");
    require(D % 2 == 0 && out.numel() == x.numel() && c.numel() == B * T * (D / 2) && s.numel() == c.numel(), "rope: shapes");
    const long total = B * H * T * (D / 2);
    if (total == 0) return;
    c10::cuda::CUDAGuard guard(x.device());
    auto stream = c10::cuda::getCurrentCUDAStream();
    dispatch(x.scalar_type(), [&](auto t) {
      using TT = decltype(t);
      rope_kernel<TT><<<grid_for(total, 256), 256, 0, stream>>>(
          static_cast<const TT*>(x.data_ptr()), x.stride(0), x.stride(1), x.stride(2), c.data_ptr<float>(), s.data_ptr<float>(),
          static_cast<TT*>(out.data_ptr()), static_cast<int>(H), static_cast<int>(T), static_cast<int>(D), interleave != 0, total);
    });
    check_launch("rope");
  });
}

// scores (B, h, T, S) contiguous, bias (B, 1, T, S) float32 contiguous -> probs (B, h, T, S) in the scores' dtype.
int ptk_masked_softmax(void* sh, void* bh, double scale, void* ph) {
  return guarded([&] {
    const auto& scores = T_(sh, "scores");
    const auto& bias = T_(bh, "bias");
    const auto& probs = T_(ph, "probs");
    require(scores.dim() == 4 && bias.dim() == 4, "masked_softmax: scores and bias must be 4-d");
    const long B = scores.size(0), H = scores.size(1), T = scores.size(2), S = scores.size(3);
    require(is_activation(scores) && probs.scalar_type() == scores.scalar_type() && bias.scalar_type() == c10::ScalarType::Float,
            "masked_softmax: dtypes");
    require(bias.size(0) == B && bias.size(1) == 1 && bias.size(2) == T && bias.size(3) == S && probs.numel() == scores.numel(),
            "masked_softmax: shapes");
    const size_t shared = (static_cast<size_t>(S) + 32) * sizeof(float);
    require(shared <= 48 * 1024, "masked_softmax: " + std::to_string(S) + " columns over 12,256");
    const long rows = B * H * T;
    if (rows == 0) return;
    require(rows <= 0x7fffffffL, "masked_softmax: too many rows");
    c10::cuda::CUDAGuard guard(scores.device());
    auto stream = c10::cuda::getCurrentCUDAStream();
    const int threads = S >= 1024 ? 512 : S >= 256 ? 256 : 128;
    dispatch(scores.scalar_type(), [&](auto t) {
      using TT = decltype(t);
      masked_softmax_kernel<TT><<<static_cast<int>(rows), threads, shared, stream>>>(
          static_cast<const TT*>(scores.data_ptr()), bias.data_ptr<float>(), static_cast<TT*>(probs.data_ptr()),
          static_cast<int>(H), static_cast<int>(T), static_cast<int>(S), static_cast<float>(scale));
    });
    check_launch("masked_softmax");
  });
}

// logits (N, E) float32, bias (E) float32 or null -> scores (N, E) float32, indices (N, k) int64, weights (N, k) float32.
int ptk_router_select(void* lh, void* bh, int groups, int topk_group, int k, int normalize, double scaling,
                      void* sh, void* ih, void* wh) {
  return guarded([&] {
    const auto& logits = T_(lh, "logits");
    const auto& scores = T_(sh, "scores");
    const auto& indices = T_(ih, "indices");
    const auto& weights = T_(wh, "weights");
    const at::Tensor* bias = bh != nullptr ? &T_(bh, "bias") : nullptr;
    require(logits.dim() == 2 && logits.scalar_type() == c10::ScalarType::Float && scores.scalar_type() == c10::ScalarType::Float
                && indices.scalar_type() == c10::ScalarType::Long && weights.scalar_type() == c10::ScalarType::Float
                && (bias == nullptr || bias->scalar_type() == c10::ScalarType::Float), "router_select: dtypes");
    const long N = logits.size(0), E = logits.size(1);
    require(E >= 1 && E <= kMaxExperts && groups >= 1 && groups <= 32 && E % groups == 0 && topk_group >= 1 && topk_group <= groups
                && k >= 1 && k <= (groups > 1 ? topk_group * (E / groups) : E), "router_select: experts, groups or k out of range");
    require(scores.numel() == N * E && indices.numel() == N * k && weights.numel() == N * k && (bias == nullptr || bias->numel() == E),
            "router_select: shapes");
    if (N == 0) return;
    c10::cuda::CUDAGuard guard(logits.device());
    auto stream = c10::cuda::getCurrentCUDAStream();
    const int warps = 4;
    const size_t shared = static_cast<size_t>(warps) * 2 * E * sizeof(float);
    const long blocks = (N + warps - 1) / warps;
    router_select_kernel<<<static_cast<int>(blocks < 4096 ? blocks : 4096), warps * 32, shared, stream>>>(
        logits.data_ptr<float>(), bias != nullptr ? bias->data_ptr<float>() : nullptr, scores.data_ptr<float>(),
        indices.data_ptr<long>(), weights.data_ptr<float>(), N, static_cast<int>(E), groups, topk_group, k, normalize != 0,
        static_cast<float>(scaling));
    check_launch("router_select");
  });
}

// gu (N, E, 2, I) contiguous, indices (N, k) int64, weights (N, k) float32 -> h (N, E, I) in gu's dtype.
int ptk_combine_silu(void* gh, void* ih, void* wh, void* hh) {
  return guarded([&] {
    const auto& gu = T_(gh, "gu");
    const auto& indices = T_(ih, "indices");
    const auto& weights = T_(wh, "weights");
    const auto& h = T_(hh, "h");
    require(gu.dim() == 4 && gu.size(2) == 2 && indices.dim() == 2, "combine_silu: gu must be (N, E, 2, I), indices (N, k)");
    const long N = gu.size(0), E = gu.size(1), I = gu.size(3), k = indices.size(1);
    require(is_activation(gu) && h.scalar_type() == gu.scalar_type() && indices.scalar_type() == c10::ScalarType::Long
                && weights.scalar_type() == c10::ScalarType::Float, "combine_silu: dtypes");
    require(indices.size(0) == N && weights.numel() == N * k && h.numel() == N * E * I, "combine_silu: shapes");
    const long total = N * E * I;
    if (total == 0) return;
    c10::cuda::CUDAGuard guard(gu.device());
    auto stream = c10::cuda::getCurrentCUDAStream();
    dispatch(gu.scalar_type(), [&](auto t) {
      using TT = decltype(t);
      combine_silu_kernel<TT><<<grid_for(total, 256), 256, 0, stream>>>(
          static_cast<const TT*>(gu.data_ptr()), indices.data_ptr<long>(), weights.data_ptr<float>(), static_cast<TT*>(h.data_ptr()),
          static_cast<int>(E), static_cast<int>(I), static_cast<int>(k), total);
    });
    check_launch("combine_silu");
  });
}

// ckv (B, T, r + dr) contiguous, w (r) float32/bfloat16, cos/sin (B, 1, T, dr/2) float32, cache (B, Cap, r + dr) in ckv's
// dtype, columns (T) int64 or null (then cursor + t) -> cache rows written in place.
int ptk_latent_append(void* kh, void* wh, double eps, void* ch, void* sh, int interleave, void* cacheh, void* colh, long cursor) {
  return guarded([&] {
    const auto& ckv = T_(kh, "ckv");
    const auto& w = T_(wh, "w");
    const auto& c = T_(ch, "cos");
    const auto& s = T_(sh, "sin");
    const auto& cache = T_(cacheh, "cache");
    const at::Tensor* columns = colh != nullptr ? &T_(colh, "columns") : nullptr;
    require(ckv.dim() == 3 && cache.dim() == 3, "latent_append: ckv (B, T, r + dr) and cache (B, Cap, r + dr)");
    const long B = ckv.size(0), T = ckv.size(1), width = ckv.size(2), r = w.numel(), dr = width - r, cap = cache.size(1);
    require(is_activation(ckv) && cache.scalar_type() == ckv.scalar_type() && is_activation(w) && c.scalar_type() == c10::ScalarType::Float
                && s.scalar_type() == c10::ScalarType::Float && (columns == nullptr || columns->scalar_type() == c10::ScalarType::Long),
            "latent_append: dtypes");
    require(dr > 0 && dr % 2 == 0 && cache.size(0) == B && cache.size(2) == width && c.numel() == B * T * (dr / 2) && s.numel() == c.numel()
                && (columns == nullptr ? cursor >= 0 && cursor + T <= cap : columns->numel() == T), "latent_append: shapes");
    if (B * T == 0) return;
    c10::cuda::CUDAGuard guard(ckv.device());
    auto stream = c10::cuda::getCurrentCUDAStream();
    const int threads = r >= 1024 ? 512 : r >= 256 ? 256 : 128;
    auto launch = [&](auto t, auto wt) {
      using TT = decltype(t);
      using WT = decltype(wt);
      latent_append_kernel<TT, WT><<<static_cast<int>(B * T), threads, 0, stream>>>(
          static_cast<const TT*>(ckv.data_ptr()), static_cast<const WT*>(w.data_ptr()), c.data_ptr<float>(), s.data_ptr<float>(),
          static_cast<TT*>(cache.data_ptr()), columns != nullptr ? columns->data_ptr<long>() : nullptr, cursor, static_cast<int>(T), cap,
          static_cast<int>(r), static_cast<int>(dr), static_cast<float>(eps), interleave != 0);
    };
    dispatch(ckv.scalar_type(), [&](auto t) {
      if (w.scalar_type() == c10::ScalarType::Float) launch(t, float{});
      else launch(t, __nv_bfloat16{});
    });
    check_launch("latent_append");
  });
}

// logits (B, V) float32, row_keys (B) int64, step (1) int64 or null (then host_step); lo, hi, s1: CounterRng's seed words
// -> tokens (B) int64, log_probs (B) float32 (log softmax(logits / T) at the token).
int ptk_sample_race(void* zh, void* kh, void* steph, long host_step, unsigned lo, unsigned hi, unsigned s1, double temperature,
                    void* th, void* lph) {
  return guarded([&] {
    const auto& z = T_(zh, "logits");
    const auto& keys = T_(kh, "row_keys");
    const auto& tokens = T_(th, "tokens");
    const auto& lp = T_(lph, "log_probs");
    const at::Tensor* step = steph != nullptr ? &T_(steph, "step") : nullptr;
    require(z.dim() == 2 && z.scalar_type() == c10::ScalarType::Float && keys.scalar_type() == c10::ScalarType::Long
                && tokens.scalar_type() == c10::ScalarType::Long && lp.scalar_type() == c10::ScalarType::Float
                && (step == nullptr || (step->scalar_type() == c10::ScalarType::Long && step->numel() == 1)), "sample_race: dtypes");
    const long B = z.size(0), V = z.size(1);
    require(keys.numel() == B && tokens.numel() == B && lp.numel() == B && V > 0 && V < 0x7fffffffL, "sample_race: shapes");
    require(temperature > 0, "sample_race: temperature must be positive");
    if (B == 0) return;
    c10::cuda::CUDAGuard guard(z.device());
    auto stream = c10::cuda::getCurrentCUDAStream();
    sample_race_kernel<<<static_cast<int>(B), 512, 0, stream>>>(
        z.data_ptr<float>(), keys.data_ptr<long>(), step != nullptr ? step->data_ptr<long>() : nullptr, host_step, lo, hi, s1,
        static_cast<float>(temperature), temperature != 1.0, tokens.data_ptr<long>(), lp.data_ptr<float>(), static_cast<int>(V));
    check_launch("sample_race");
  });
}

}  // extern "C"
