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

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

}  // namespace ptk
