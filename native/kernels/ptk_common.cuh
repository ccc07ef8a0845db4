// Shared by the translation units of libposttrain_kernels.so: the C ABI error convention (every entry point returns
// 0, or -1 with the reason in ptk_last_error(); no C++ exception crosses the ABI), tensor-handle checks and the
// float <-> storage conversions the kernels use.
#pragma once

#include <ATen/core/Tensor.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <exception>
#include <stdexcept>
#include <string>

namespace ptk {

// One slot per thread, shared by every translation unit (inline function: one static for the whole library).
inline std::string& last_error() {
  thread_local std::string slot;
  return slot;
}

template <typename F>
int guarded(F&& body) {
  try {
    body();
    return 0;
  } catch (const std::exception& e) {
    last_error() = e.what();
  } catch (...) {
    last_error() = "unknown C++ exception";
  }
  return -1;
}

inline void require(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

inline void check_launch(const char* kernel) {
  auto err = cudaGetLastError();
  if (err != cudaSuccess) throw std::runtime_error(std::string(kernel) + ": " + cudaGetErrorString(err));
}

// A TorchSharp tensor handle (at::Tensor*) that must be a defined, contiguous CUDA tensor.
inline const at::Tensor& tensor_arg(void* handle, const char* name) {
  require(handle != nullptr, std::string(name) + ": null tensor");
  const auto& t = *static_cast<at::Tensor*>(handle);
  require(t.defined(), std::string(name) + ": undefined tensor");
  require(t.is_cuda(), std::string(name) + ": not a CUDA tensor");
  require(t.is_contiguous(), std::string(name) + ": not contiguous");
  return t;
}

// A TorchSharp tensor handle that must be a defined CUDA tensor of `dims` dimensions with unit stride in the last one
// (any other strides: views such as a narrow of the last dim or a transpose of the others).
inline const at::Tensor& strided_arg(void* handle, const char* name, int64_t dims) {
  require(handle != nullptr, std::string(name) + ": null tensor");
  const auto& t = *static_cast<at::Tensor*>(handle);
  require(t.defined() && t.is_cuda() && t.dim() == dims && t.stride(dims - 1) == 1,
          std::string(name) + ": must be a CUDA tensor of " + std::to_string(dims) + " dims with unit stride in the last");
  return t;
}

// float32 or bfloat16: the activation dtypes the kernels take.
inline bool is_activation(const at::Tensor& t) {
  return t.scalar_type() == c10::ScalarType::Float || t.scalar_type() == c10::ScalarType::BFloat16;
}

// Blocks for a grid-stride loop over n elements (at most 4096).
inline int grid_for(long n, int threads) {
  const long blocks = (n + threads - 1) / threads;
  return static_cast<int>(blocks < 4096 ? (blocks < 1 ? 1 : blocks) : 4096);
}

// Calls body(T{}) for an activation dtype (float or __nv_bfloat16).
template <typename Body>
void dispatch(c10::ScalarType type, Body&& body) {
  if (type == c10::ScalarType::Float) body(float{});
  else if (type == c10::ScalarType::BFloat16) body(__nv_bfloat16{});
  else throw std::runtime_error("unsupported dtype (float32 / bfloat16 only)");
}

// Sum over the block; `shared` holds at least 32 floats. Every thread gets the result.
__device__ inline float block_sum(float v, float* shared) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = threadIdx.x < warps ? shared[threadIdx.x] : 0.f;
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();  // every warp has read shared[] before thread 0 overwrites it
  if (threadIdx.x == 0) shared[0] = v;
  __syncthreads();
  const float total = shared[0];
  __syncthreads();  // shared[] free for the next call
  return total;
}

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// Rounds a float to T's precision and back (identity for float): the eager op's result dtype.
template <typename T>
__device__ __forceinline__ float rnd(float v) { return to_f(from_f<T>(v)); }

// One rotary pair (x1, x2) at angle (cos, sin) as the eager ops compute it: cos and sin rounded to T, every product and
// sum rounded to T. Returns (x1 c - x2 s, x2 c + x1 s), each already rounded.
template <typename T>
__device__ __forceinline__ float2 rope_pair(float x1, float x2, float cos, float sin) {
  const float c = rnd<T>(cos), s = rnd<T>(sin);
  return make_float2(rnd<T>(__fsub_rn(rnd<T>(__fmul_rn(x1, c)), rnd<T>(__fmul_rn(x2, s)))),
                     rnd<T>(__fadd_rn(rnd<T>(__fmul_rn(x2, c)), rnd<T>(__fmul_rn(x1, s)))));
}

}  // namespace ptk
