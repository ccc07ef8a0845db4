// Fused elementwise kernels for PostTrain's training and decode steps, where the eager ops cost many small kernels:
//   RMSNorm forward   y = x * r * w,  r = 1 / sqrt(mean(x^2) + eps) per row (fp32 math, one rounding to x's dtype)
//   RMSNorm backward  with xh = x * r, g = dy * w:  dx = r * (g - xh * mean(g * xh)),  dw = sum over rows of dy * xh
//   SwiGLU forward    h = silu(a) * b,  silu(a) = a * s, s = 1 / (1 + exp(-a))
//   SwiGLU backward   da = dh * b * s * (1 + a * (1 - s)),  db = dh * silu(a)
//   Softmax cross-entropy per row of logits z (the LM head's chunk): loss = logsumexp(z) - z[label] (fp32) and
//                     dz = softmax(z) - onehot(label) in z's dtype, both zero on rows whose label is ignore_index;
//                     one read for max and sum (online, 16-byte loads), one read and one write for dz (may overwrite z).
// A C ABI for P/Invoke from C#: tensors arrive as TorchSharp handles (at::Tensor*), outputs are allocated by the
// caller (so CUDA-graph capture sees only kernel launches on the current stream), every call returns 0 or -1 with the
// reason in ptk_last_error(); no C++ exception crosses the ABI. x and dy: float32 or bfloat16, contiguous, rows x D;
// w: float32 or bfloat16. RMSNorm backward writes per-block partial sums of dw (blocks x D, fp32) that the caller
// sums over blocks (one reduction instead of an atomic per element). Built on the GPU machine at first use by
// scripts/gpu/build-kernels.sh against the running libtorch; PostTrain checks it against its plain ops before use
// (PostTrain.Core.Kernels.FusedKernels) and falls back to them when it is missing or disagrees.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "ptk_common.cuh"

namespace {
using ptk::block_sum;
using ptk::check_launch;
using ptk::from_f;
using ptk::grid_for;
using ptk::guarded;
using ptk::is_activation;
using ptk::require;
using ptk::to_f;

// One block per row (grid-stride over rows).
template <typename T, typename W>
__global__ void rmsnorm_forward_kernel(const T* __restrict__ x, const W* __restrict__ w, T* __restrict__ y,
                                       float* __restrict__ rstd, long rows, int dim, float eps) {
  __shared__ float shared[32];
  for (long row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * dim;
    float ss = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
      const float v = to_f(xr[i]);
      ss += v * v;
    }
    const float r = rsqrtf(block_sum(ss, shared) / dim + eps);
    if (threadIdx.x == 0) rstd[row] = r;
    T* yr = y + row * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = from_f<T>(to_f(xr[i]) * r * to_f(w[i]));
  }
}

// Rows split over the grid; each block keeps its dw partial sums for the whole row width in shared memory (each
// thread owns the columns i = threadIdx.x + k * blockDim.x, so no atomics) and writes them to partial[blockIdx.x].
template <typename T, typename W>
__global__ void rmsnorm_backward_kernel(const T* __restrict__ dy, const T* __restrict__ x, const W* __restrict__ w,
                                        const float* __restrict__ rstd, T* __restrict__ dx,
                                        float* __restrict__ partial, long rows, int dim) {
  extern __shared__ float smem[];
  float* dw = smem;            // dim
  float* shared = smem + dim;  // 32
  for (int i = threadIdx.x; i < dim; i += blockDim.x) dw[i] = 0.f;
  for (long row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * dim;
    const T* dyr = dy + row * dim;
    const float r = rstd[row];
    float dot = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
      const float xh = to_f(xr[i]) * r;
      const float d = to_f(dyr[i]);
      dot += d * to_f(w[i]) * xh;
      dw[i] += d * xh;
    }
    const float mean = block_sum(dot, shared) / dim;
    T* dxr = dx + row * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
      const float xh = to_f(xr[i]) * r;
      dxr[i] = from_f<T>(r * (to_f(dyr[i]) * to_f(w[i]) - xh * mean));
    }
  }
  for (int i = threadIdx.x; i < dim; i += blockDim.x) partial[static_cast<long>(blockIdx.x) * dim + i] = dw[i];
}

template <typename T>
__global__ void swiglu_forward_kernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ h, long n) {
  for (long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; i < n; i += static_cast<long>(gridDim.x) * blockDim.x) {
    const float av = to_f(a[i]);
    const float s = 1.f / (1.f + __expf(-av));
    h[i] = from_f<T>(av * s * to_f(b[i]));
  }
}

template <typename T>
__global__ void swiglu_backward_kernel(const T* __restrict__ dh, const T* __restrict__ a, const T* __restrict__ b,
                                       T* __restrict__ da, T* __restrict__ db, long n) {
  for (long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; i < n; i += static_cast<long>(gridDim.x) * blockDim.x) {
    const float av = to_f(a[i]), bv = to_f(b[i]), g = to_f(dh[i]);
    const float s = 1.f / (1.f + __expf(-av));
    da[i] = from_f<T>(g * bv * s * (1.f + av * (1.f - s)));
    db[i] = from_f<T>(g * av * s);
  }
}

// One block per row (grid-stride over rows). Pass 1: online max m and sum s of exp(z - m) per thread, merged across
// the block; lse = m + log s. Pass 2: dz = exp(z - lse) - [i == label]. Math in fp32 with accurate expf / logf.
// VEC elements per load (16 bytes: 8 bf16 or 4 fp32; 1 when the row is not 16-byte aligned): a thread takes the
// max of its VEC values first and rescales its sum only when that max grows, so pass 1 costs one expf per element
// (two per element merged one by one, with 2-byte loads, made this kernel 3.5x its bandwidth bound on the H200:
// 7.2 ms per step at a 163,840 vocabulary against 4.2 for torch.compile's, 2026-12-05).
__device__ __forceinline__ void merge_max_sum(float& m, float& s, float m2, float s2) {
  if (m2 == -INFINITY) return;
  if (m == -INFINITY) { m = m2; s = s2; return; }
  const float hi = fmaxf(m, m2);
  s = s * expf(m - hi) + s2 * expf(m2 - hi);
  m = hi;
}

template <typename T, int VEC>
__device__ __forceinline__ void load_vec(const T* p, float (&v)[VEC]) {
  if constexpr (VEC == 1) {
    v[0] = to_f(p[0]);
  } else {
    static_assert(VEC * sizeof(T) == 16, "16-byte vectors");
    alignas(16) T buf[VEC];
    *reinterpret_cast<uint4*>(buf) = *reinterpret_cast<const uint4*>(p);
#pragma unroll
    for (int k = 0; k < VEC; ++k) v[k] = to_f(buf[k]);
  }
}

template <typename T, int VEC>
__device__ __forceinline__ void store_vec(T* p, const float (&v)[VEC]) {
  if constexpr (VEC == 1) {
    p[0] = from_f<T>(v[0]);
  } else {
    alignas(16) T buf[VEC];
#pragma unroll
    for (int k = 0; k < VEC; ++k) buf[k] = from_f<T>(v[k]);
    *reinterpret_cast<uint4*>(p) = *reinterpret_cast<const uint4*>(buf);
  }
}

template <typename T, int VEC>
__global__ void softmax_xent_kernel(const T* z, const int64_t* __restrict__ labels, T* dz,  // dz may alias z
                                    float* __restrict__ loss, long rows, long vocab, int64_t ignore_index) {
  __shared__ float ms[32], ss[32];
  __shared__ float label_logit;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  const long stride = static_cast<long>(blockDim.x) * VEC;  // vocab % VEC == 0 (the host picks VEC)
  for (long row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* zr = z + row * vocab;
    T* dr = dz + row * vocab;
    const int64_t label = labels[row];
    const bool ignored = label == ignore_index;
    const bool in_range = label >= 0 && label < vocab;
    float m = -INFINITY, s = 0.f;
    bool nan = false;
    for (long i = threadIdx.x * static_cast<long>(VEC); i < vocab; i += stride) {
      float v[VEC];
      load_vec<T, VEC>(zr + i, v);
      float hi = v[0];
#pragma unroll
      for (int k = 0; k < VEC; ++k) {
        nan |= isnan(v[k]);
        hi = fmaxf(hi, v[k]);
      }
      if (hi > m) {  // the running max grows: rescale the sum once (never on NaN, which is flagged)
        s = m == -INFINITY ? 0.f : s * expf(m - hi);
        m = hi;
      }
      if (m != -INFINITY) {
#pragma unroll
        for (int k = 0; k < VEC; ++k) s += expf(v[k] - m);
      }
    }
    for (int o = 16; o > 0; o >>= 1) merge_max_sum(m, s, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, s, o));
    if (lane == 0) { ms[warp] = m; ss[warp] = s; }
    if (threadIdx.x == 0) label_logit = !ignored && in_range ? to_f(zr[label]) : 0.f;  // read before pass 2 may overwrite it
    const bool any_nan = __syncthreads_or(nan) != 0;
    m = -INFINITY;
    s = 0.f;
    for (int w = 0; w < warps; ++w) merge_max_sum(m, s, ms[w], ss[w]);
    const float lse = any_nan ? NAN : m + logf(s);  // a NaN logit makes the row NaN, as log_softmax does
    if (threadIdx.x == 0) loss[row] = ignored ? 0.f : in_range ? lse - label_logit : NAN;  // a bad label shows as NaN
    for (long i = threadIdx.x * static_cast<long>(VEC); i < vocab; i += stride) {
      float v[VEC];
      load_vec<T, VEC>(zr + i, v);
#pragma unroll
      for (int k = 0; k < VEC; ++k) v[k] = ignored ? 0.f : expf(v[k] - lse) - (i + k == label ? 1.f : 0.f);
      store_vec<T, VEC>(dr + i, v);
    }
    __syncthreads();  // ms / ss / label_logit free for the next row
  }
}

const at::Tensor& T_(void* handle, const char* name) { return ptk::tensor_arg(handle, name); }

int threads_for(long dim) { return dim >= 1024 ? 512 : dim >= 256 ? 256 : 128; }

// Calls body.template operator()<T, W>() for the (activation, weight) dtype pair.
template <typename Body>
void dispatch2(c10::ScalarType act, c10::ScalarType wt, Body&& body) {
  if (act == c10::ScalarType::Float && wt == c10::ScalarType::Float) body(float{}, float{});
  else if (act == c10::ScalarType::Float && wt == c10::ScalarType::BFloat16) body(float{}, __nv_bfloat16{});
  else if (act == c10::ScalarType::BFloat16 && wt == c10::ScalarType::Float) body(__nv_bfloat16{}, float{});
  else if (act == c10::ScalarType::BFloat16 && wt == c10::ScalarType::BFloat16) body(__nv_bfloat16{}, __nv_bfloat16{});
  else throw std::runtime_error("unsupported dtypes (float32 / bfloat16 only)");
}
}  // namespace

extern "C" {

const char* ptk_last_error() { return ptk::last_error().c_str(); }

// x (rows, D), w (D) -> y (rows, D) in x's dtype, rstd (rows) float32.
int ptk_rmsnorm_forward(void* xh, void* wh, double eps, void* yh, void* rh) {
  return guarded([&] {
    const auto& x = T_(xh, "x");
    const auto& w = T_(wh, "w");
    const auto& y = T_(yh, "y");
    const auto& rstd = T_(rh, "rstd");
    require(is_activation(x) && y.scalar_type() == x.scalar_type() && rstd.scalar_type() == c10::ScalarType::Float, "rmsnorm_forward: dtypes");
    const long dim = x.size(-1), rows = x.numel() / (dim > 0 ? dim : 1);
    require(w.numel() == dim && y.numel() == x.numel() && rstd.numel() == rows, "rmsnorm_forward: shapes");
    if (rows == 0) return;
    c10::cuda::CUDAGuard guard(x.device());
    auto stream = c10::cuda::getCurrentCUDAStream();
    const int threads = threads_for(dim);
    const int blocks = static_cast<int>(rows < 65535 ? rows : 65535);
    dispatch2(x.scalar_type(), w.scalar_type(), [&](auto t, auto wt) {
      using T = decltype(t);
      using W = decltype(wt);
      rmsnorm_forward_kernel<T, W><<<blocks, threads, 0, stream>>>(
          static_cast<const T*>(x.data_ptr()), static_cast<const W*>(w.data_ptr()), static_cast<T*>(y.data_ptr()),
          rstd.data_ptr<float>(), rows, static_cast<int>(dim), static_cast<float>(eps));
    });
    check_launch("rmsnorm_forward");
  });
}

// The number of row blocks ptk_rmsnorm_backward uses for `rows` rows: the first dimension of its dw partial buffer.
// 1,024 fill an H200's 132 SMs (2 x 132 left each SM one or two blocks, each walking ~31 rows of 8,192 with four block
// barriers per row: 47 us for an 8,192 x 768 backward that moves 38 MB, 2026-12-05); the caller's column sum over
// the partial rows stays small beside the pass (3 MB at width 768).
int ptk_rmsnorm_backward_blocks(long rows) { return static_cast<int>(rows < 1024 ? (rows < 1 ? 1 : rows) : 1024); }

// dy, x (rows, D), w (D), rstd (rows) -> dx (rows, D) in x's dtype, partial (blocks, D) float32.
int ptk_rmsnorm_backward(void* dyh, void* xh, void* wh, void* rh, void* dxh, void* ph) {
  return guarded([&] {
    const auto& dy = T_(dyh, "dy");
    const auto& x = T_(xh, "x");
    const auto& w = T_(wh, "w");
    const auto& rstd = T_(rh, "rstd");
    const auto& dx = T_(dxh, "dx");
    const auto& partial = T_(ph, "partial");
    require(is_activation(x) && dy.scalar_type() == x.scalar_type() && dx.scalar_type() == x.scalar_type()
                && rstd.scalar_type() == c10::ScalarType::Float && partial.scalar_type() == c10::ScalarType::Float, "rmsnorm_backward: dtypes");
    const long dim = x.size(-1), rows = x.numel() / (dim > 0 ? dim : 1);
    const int blocks = ptk_rmsnorm_backward_blocks(rows);
    require(w.numel() == dim && dy.numel() == x.numel() && dx.numel() == x.numel() && rstd.numel() == rows
                && partial.numel() == static_cast<long>(blocks) * dim, "rmsnorm_backward: shapes");
    const size_t shared = (static_cast<size_t>(dim) + 32) * sizeof(float);
    require(shared <= 48 * 1024, "rmsnorm_backward: row width " + std::to_string(dim) + " over 12,256");
    c10::cuda::CUDAGuard guard(x.device());
    auto stream = c10::cuda::getCurrentCUDAStream();
    const int threads = threads_for(dim);
    dispatch2(x.scalar_type(), w.scalar_type(), [&](auto t, auto wt) {
      using T = decltype(t);
      using W = decltype(wt);
      rmsnorm_backward_kernel<T, W><<<blocks, threads, shared, stream>>>(
          static_cast<const T*>(dy.data_ptr()), static_cast<const T*>(x.data_ptr()), static_cast<const W*>(w.data_ptr()),
          rstd.data_ptr<float>(), static_cast<T*>(dx.data_ptr()), partial.data_ptr<float>(), rows, static_cast<int>(dim));
    });
    check_launch("rmsnorm_backward");
  });
}

// a, b -> h = silu(a) * b, all of one dtype and shape.
int ptk_swiglu_forward(void* ah, void* bh, void* hh) {
  return guarded([&] {
    const auto& a = T_(ah, "a");
    const auto& b = T_(bh, "b");
    const auto& h = T_(hh, "h");
    require(is_activation(a) && b.scalar_type() == a.scalar_type() && h.scalar_type() == a.scalar_type(), "swiglu_forward: dtypes");
    require(b.numel() == a.numel() && h.numel() == a.numel(), "swiglu_forward: shapes");
    const long n = a.numel();
    if (n == 0) return;
    c10::cuda::CUDAGuard guard(a.device());
    auto stream = c10::cuda::getCurrentCUDAStream();
    const int threads = 256;
    dispatch2(a.scalar_type(), a.scalar_type(), [&](auto t, auto) {
      using T = decltype(t);
      swiglu_forward_kernel<T><<<grid_for(n, threads), threads, 0, stream>>>(
          static_cast<const T*>(a.data_ptr()), static_cast<const T*>(b.data_ptr()), static_cast<T*>(h.data_ptr()), n);
    });
    check_launch("swiglu_forward");
  });
}

// dh, a, b -> da, db.
int ptk_swiglu_backward(void* dhh, void* ah, void* bh, void* dah, void* dbh) {
  return guarded([&] {
    const auto& dh = T_(dhh, "dh");
    const auto& a = T_(ah, "a");
    const auto& b = T_(bh, "b");
    const auto& da = T_(dah, "da");
    const auto& db = T_(dbh, "db");
    require(is_activation(a) && dh.scalar_type() == a.scalar_type() && b.scalar_type() == a.scalar_type()
                && da.scalar_type() == a.scalar_type() && db.scalar_type() == a.scalar_type(), "swiglu_backward: dtypes");
    const long n = a.numel();
    require(dh.numel() == n && b.numel() == n && da.numel() == n && db.numel() == n, "swiglu_backward: shapes");
    if (n == 0) return;
    c10::cuda::CUDAGuard guard(a.device());
    auto stream = c10::cuda::getCurrentCUDAStream();
    const int threads = 256;
    dispatch2(a.scalar_type(), a.scalar_type(), [&](auto t, auto) {
      using T = decltype(t);
      swiglu_backward_kernel<T><<<grid_for(n, threads), threads, 0, stream>>>(
          static_cast<const T*>(dh.data_ptr()), static_cast<const T*>(a.data_ptr()), static_cast<const T*>(b.data_ptr()),
          static_cast<T*>(da.data_ptr()), static_cast<T*>(db.data_ptr()), n);
    });
    check_launch("swiglu_backward");
  });
}

// z (rows, V) float32 or bfloat16, labels (rows) int64 -> dz (rows, V) in z's dtype (may be z itself), loss (rows) float32.
int ptk_softmax_xent(void* zh, void* lh, long ignore_index, void* dzh, void* lossh) {
  return guarded([&] {
    const auto& z = T_(zh, "logits");
    const auto& labels = T_(lh, "labels");
    const auto& dz = T_(dzh, "dlogits");
    const auto& loss = T_(lossh, "loss");
    require(is_activation(z) && dz.scalar_type() == z.scalar_type() && labels.scalar_type() == c10::ScalarType::Long
                && loss.scalar_type() == c10::ScalarType::Float, "softmax_xent: dtypes");
    require(z.dim() == 2 && dz.sizes() == z.sizes() && labels.numel() == z.size(0) && loss.numel() == z.size(0), "softmax_xent: shapes");
    const long rows = z.size(0), vocab = z.size(1);
    if (rows == 0) return;
    require(vocab > 0, "softmax_xent: empty vocabulary");
    c10::cuda::CUDAGuard guard(z.device());
    auto stream = c10::cuda::getCurrentCUDAStream();
    const int threads = vocab >= 8192 ? 1024 : 256;
    const int blocks = static_cast<int>(rows < 65535 ? rows : 65535);
    dispatch2(z.scalar_type(), z.scalar_type(), [&](auto t, auto) {
      using T = decltype(t);
      constexpr int V = 16 / sizeof(T);
      const bool aligned = vocab % V == 0 && reinterpret_cast<uintptr_t>(z.data_ptr()) % 16 == 0
                           && reinterpret_cast<uintptr_t>(dz.data_ptr()) % 16 == 0;
      auto zp = static_cast<const T*>(z.data_ptr());
      auto dp = static_cast<T*>(dz.data_ptr());
      if (aligned)
        softmax_xent_kernel<T, V><<<blocks, threads, 0, stream>>>(zp, labels.data_ptr<int64_t>(), dp, loss.data_ptr<float>(), rows,
                                                                  vocab, static_cast<int64_t>(ignore_index));
      else
        softmax_xent_kernel<T, 1><<<blocks, threads, 0, stream>>>(zp, labels.data_ptr<int64_t>(), dp, loss.data_ptr<float>(), rows,
                                                                  vocab, static_cast<int64_t>(ignore_index));
    });
    check_launch("softmax_xent");
  });
}

}  // extern "C"
