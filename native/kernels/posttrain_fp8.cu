// FP8 (E4M3) kernels for DeepSeek-V3's fine-grained recipe, one pass each, and the launcher of the grouped FP8 GEMMs
// compiled from native/kernels/fp8_gemm.py (Triton, ahead of time, by scripts/gpu/build-kernels.sh).
//
// Quantisation (scale = amax / 448 per tile or block, an all-zero tile gets scale 1, q = e4m3(clamp(x / scale, +-448))
// rounded to nearest even; the same IEEE operations as PostTrain.Core.Precision.Fp8, so the results agree bit for bit):
//   ptk_fp8_quant_rows    x (M, K)    -> q (M, Kp),  s (M, Kp/128)       1x128 tiles along K, Kp = K rounded up to 128
//   ptk_fp8_quant_cols    x (M, N)    -> q (Np, M),  s (Np, M/128)       1x128 tiles along M of x^T (M % 128 == 0), for
//                                                                        the weight gradient, the transpose fused in
//   ptk_fp8_quant_blocks  w (B, N, K) -> q (B, Np, Kp), s (B, Np/128, Kp/128)   128x128 blocks
//   ptk_fp8_quant_blocks2 the same, and in the same pass its transpose qt (B, Kp, Np), st (B, Kp/128, Np/128) (the
//                         weights of Dgrad: a block's amax is its transpose's, so qt is exactly q transposed)
//   ptk_fp8_requant_cols  FP8 xq (M, Kp) with tile scales -> quant_cols of its dequantised values (no FP32 copy)
// Padding (columns past K, rows past N) is written as zeros with scale 1, so no padding copy is needed afterwards.
// x and w are float32 or bfloat16; q is float8_e4m3fn; s is float32; all contiguous and allocated by the caller.
//
// Grouped GEMMs (cubins loaded by ptk_fp8_load_kernel; launched on the current stream, capturable in a CUDA graph,
// no host sync; shapes and expert offsets stay on the device):
//   ptk_fp8_gemm_mgrouped: c (M, N) bf16 = per 128-row block i with expert e = block_expert[i] >= 0:
//       dequant(a rows of block i) dequant(b[e])^T; a (M, K) 1x128 tiles, b (E, N, K) 128x128 blocks (Fprop, Dgrad).
//       Blocks with block_expert[i] < 0 are written as zeros.
//   ptk_fp8_gemm_kgrouped: c (E, NA, NB) fp32 or bf16 = per expert e: dequant(a[:, seg]) dequant(b[:, seg])^T over the
//       token columns seg = [segments[e], segments[e+1]); a (NA, M) and b (NB, M) 1x128 tiles along M (Wgrad). The
//       Triton cubin writes fp32 (a bf16 c gets it through a temporary); the wgmma kernels write either directly.
// Every dimension is a multiple of 128 (the callers pad), every pointer 16-byte aligned (checked).
// ptk_fp8_use_wgmma(device, path, persistent, min_dim) switches both GEMMs on that device to the TMA + wgmma kernels of
// native/kernels/sm90a/fp8_gemm_wgmma.cu (a library of their own, built for sm_90a only; dlopen'ed here; one CTA per
// tile, or the persistent kernels when `persistent`) for every GEMM whose two weight dimensions (N and K; NA and NB)
// are both at least min_dim (0: every GEMM), the Triton cubins running the others; or back to the Triton cubins for
// all when path is null. Same contracts, same stream.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <dlfcn.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "ptk_common.cuh"

namespace {
using ptk::check_launch;
using ptk::guarded;
using ptk::require;
using ptk::tensor_arg;
using ptk::to_f;

// float8_e4m3fn (PyTorch >= 2.1). The compile check against older headers (scripts/dev/check-native.sh) defines it.
#ifndef PTK_FP8_SCALAR_TYPE
#define PTK_FP8_SCALAR_TYPE c10::ScalarType::Float8_e4m3fn
#endif

constexpr int kTile = 128;
constexpr float kE4M3Max = 448.f;

// NaN follows the torch reference (where(amax > 0, amax / 448, 1) with a NaN amax, clamp keeping NaN): a tile holding
// a NaN gets scale 1 and its NaNs stay NaN, so a diverging run still shows NaN downstream.
__device__ __forceinline__ float scale_of(float amax, bool nan) { return !nan && amax > 0.f ? amax / kE4M3Max : 1.f; }

__device__ __forceinline__ uint8_t to_e4m3(float v, float scale) {
  const float s = v / scale;
  const float q = isnan(s) ? s : fminf(fmaxf(s, -kE4M3Max), kE4M3Max);
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(q, __NV_SATFINITE, __NV_E4M3));
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// N consecutive elements from p as floats, in one or two vector loads (p aligned to N * sizeof(T), N * sizeof(T) a
// multiple of 8 bytes).
template <int N, typename T>
__device__ __forceinline__ void load_vec(const T* p, float (&v)[N]) {
  constexpr int kBytes = N * static_cast<int>(sizeof(T));
  static_assert(kBytes % 8 == 0 && kBytes <= 32, "load_vec: 8, 16 or 32 bytes");
  if constexpr (kBytes == 8) {
    const uint2 u = *reinterpret_cast<const uint2*>(p);
    const T* e = reinterpret_cast<const T*>(&u);
#pragma unroll
    for (int j = 0; j < N; ++j) v[j] = to_f(e[j]);
  } else {
    constexpr int kPer = 16 / static_cast<int>(sizeof(T));
#pragma unroll
    for (int i = 0; i < kBytes / 16; ++i) {
      const uint4 u = reinterpret_cast<const uint4*>(p)[i];
      const T* e = reinterpret_cast<const T*>(&u);
#pragma unroll
      for (int j = 0; j < kPer; ++j) v[i * kPer + j] = to_f(e[j]);
    }
  }
}

// Elements [col, col + N) of a row of `cols` values, zeros past the end; vector loads when `vec` (cols a multiple of
// N and the base aligned to N elements, checked by the launcher) and the run lies inside the row.
template <int N, typename T>
__device__ __forceinline__ void load_run(const T* row, int col, int cols, bool vec, float (&v)[N]) {
  if (vec && col + N <= cols) {
    load_vec<N>(row + col, v);
    return;
  }
#pragma unroll
  for (int j = 0; j < N; ++j) v[j] = col + j < cols ? to_f(row[col + j]) : 0.f;
}

// N values to E4M3 with one scale, packed little-endian (element j in byte j).
template <int N>
__device__ __forceinline__ uint64_t pack_e4m3(const float (&v)[N], float scale) {
  uint64_t packed = 0;
#pragma unroll
  for (int j = 0; j < N; ++j) packed |= static_cast<uint64_t>(to_e4m3(v[j], scale)) << (8 * j);
  return packed;
}

template <typename T>
bool vector_ok(const at::Tensor& t, long cols, int n) {
  return cols % n == 0 && reinterpret_cast<uintptr_t>(t.data_ptr()) % (n * sizeof(T)) == 0;
}

// Half a warp per 1x128 tile, 8 consecutive columns per lane (one 16-byte load for bfloat16, two for float32, one
// 8-byte store); two tiles per warp, 16 per 256-thread block. Lanes past the last tile join the shuffles on zeros and
// store nothing (the reductions need the whole warp).
template <typename T>
__global__ void __launch_bounds__(256) quant_rows_kernel(const T* __restrict__ x, uint8_t* __restrict__ q,
                                                         float* __restrict__ s, long rows, int cols, int tiles_per_row,
                                                         bool vec) {
  const long tile = (static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x) / 16;
  const int sub = threadIdx.x & 15;
  const bool live = tile < rows * tiles_per_row;
  const long row = live ? tile / tiles_per_row : 0;
  const int col0 = live ? static_cast<int>(tile % tiles_per_row) * kTile + sub * 8 : 0;
  float v[8];
  if (live) {
    load_run<8>(x + row * cols, col0, cols, vec, v);
  } else {
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] = 0.f;
  }
  float amax = 0.f;
  bool nan = false;
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    amax = fmaxf(amax, fabsf(v[j]));
    nan |= isnan(v[j]);
  }
  for (int o = 8; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));  // within the half
  const unsigned nans = __ballot_sync(0xffffffffu, nan);
  const bool tile_nan = ((nans >> (threadIdx.x & 16)) & 0xffffu) != 0;
  if (!live) return;
  const float scale = scale_of(amax, tile_nan);
  const long padded = static_cast<long>(tiles_per_row) * kTile;
  *reinterpret_cast<uint64_t*>(q + row * padded + col0) = pack_e4m3(v, scale);
  if (sub == 0) s[tile] = scale;
}

// The source of quant_cols, read 8 consecutive columns of one row at a time (col a multiple of 8): a float32 /
// bfloat16 tensor (vector loads where `vec`: cols a multiple of 8 and the base aligned; zeros past the last column),
// or an FP8 tensor with 1x128 tile scales along its rows, dequantised on the fly (the weight gradient re-quantises the
// forward's FP8 activations transposed, as DeepSeek-V3 does, without an FP32 copy; cols is a multiple of 128 there, so
// the 8 values are one 8-byte load inside one scale tile).
template <typename T>
struct PlainSource {
  const T* x;
  bool vec;
  __device__ __forceinline__ void load8(long row, int col, int cols, float (&v)[8]) const {
    load_run<8>(x + row * cols, col, cols, vec, v);
  }
};

struct Fp8TileSource {
  const uint8_t* q;
  const float* s;
  __device__ __forceinline__ void load8(long row, int col, int cols, float (&v)[8]) const {
    const uint2 u = *reinterpret_cast<const uint2*>(q + row * cols + col);
    const float scale = s[row * (cols / kTile) + col / kTile];
    const uint8_t* b = reinterpret_cast<const uint8_t*>(&u);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const __half_raw h = __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(b[j]), __NV_E4M3);
      v[j] = __half2float(__half(h)) * scale;
    }
  }
};

// x (M, N) -> q (Np, M) with 1x128 tiles along M. A 256-thread block takes 128 rows x 64 columns of x: each thread
// reads 8 consecutive columns of 4 rows (8 threads cover a 64-column row segment, so a warp reads four contiguous
// runs) into shared memory, transposed; then each warp quantises 8 of the 64 columns, a lane holding rows lane,
// lane + 32, lane + 64, lane + 96 (conflict-free shared reads), and writes them as 128 consecutive bytes of a row of q.
constexpr int kColsPerBlock = 64;

template <typename Source>
__global__ void __launch_bounds__(256) quant_cols_kernel(Source source, uint8_t* __restrict__ q,
                                                         float* __restrict__ s, int rows, int cols) {
  __shared__ float tile[kColsPerBlock][kTile + 1];  // [column][row]
  const int t = threadIdx.x;
  const long m0 = static_cast<long>(blockIdx.y) * kTile;
  const int n0 = blockIdx.x * kColsPerBlock;
  const int c8 = (t & 7) * 8;
#pragma unroll
  for (int r = t >> 3; r < kTile; r += 32) {
    float v[8];
    source.load8(m0 + r, n0 + c8, cols, v);
#pragma unroll
    for (int j = 0; j < 8; ++j) tile[c8 + j][r] = v[j];
  }
  __syncthreads();
  const int warp = t >> 5, lane = t & 31;
  const int m_tiles = rows / kTile;
  for (int c = warp; c < kColsPerBlock; c += 8) {
    float v[4];
    float amax = 0.f;
    bool nan = false;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      v[j] = tile[c][lane + 32 * j];
      amax = fmaxf(amax, fabsf(v[j]));
      nan |= isnan(v[j]);
    }
    const float scale = scale_of(warp_max(amax), __any_sync(0xffffffffu, nan));
    const long n = n0 + c;
    uint8_t* out = q + n * rows + m0;
#pragma unroll
    for (int j = 0; j < 4; ++j) out[lane + 32 * j] = to_e4m3(v[j], scale);
    if (lane == 0) s[n * m_tiles + blockIdx.y] = scale;
  }
}

// One 256-thread block per 128x128 block; each thread holds an 8x8 sub-block (rows 8 rg .. 8 rg + 7, columns
// 8 cg .. 8 cg + 7) in registers, so the block is read once, with 16- or 32-byte loads where `vec`, and written with
// 8-byte stores. A warp covers 4 consecutive rg and 8 consecutive cg: each of its loads reads 4 rows x 64 columns
// (128-byte runs of bfloat16) and each store writes 4 rows x 64 bytes.
// With kBoth, the quantised block is also written transposed into qt/st: the thread's 8x8 bytes are transposed in
// registers, and each of its 8 stores writes 8 bytes of a row of qt (a warp: 8 rows x 32 bytes, whole sectors).
// (Until 2026-12-06 the transpose went through shared memory with byte stores that hit 8-way bank conflicts: 5.1 ms
// per bench-moe-large FP8 step on the H200, ~0.3x of copy bandwidth.)
template <typename T, bool kBoth>
__global__ void quant_blocks_kernel(const T* __restrict__ w, uint8_t* __restrict__ q, float* __restrict__ s, int rows,
                                    int cols, int row_blocks, int col_blocks, bool vec, uint8_t* __restrict__ qt,
                                    float* __restrict__ st) {
  __shared__ float warp_amax[8];
  const long batch = blockIdx.z;
  const int t = threadIdx.x;
  const int cg = (t & 7) | (((t >> 5) & 1) << 3), rg = ((t >> 3) & 3) | ((t >> 6) << 2);
  const int r0 = blockIdx.y * kTile + 8 * rg, c0 = blockIdx.x * kTile;
  const int col = c0 + 8 * cg;
  const T* wb = w + batch * rows * static_cast<long>(cols);
  float v[8][8];
  float amax = 0.f;
  bool nan = false;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int r = r0 + i;
    if (r < rows) {
      load_run<8>(wb + static_cast<long>(r) * cols, col, cols, vec, v[i]);
    } else {
#pragma unroll
      for (int j = 0; j < 8; ++j) v[i][j] = 0.f;
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      amax = fmaxf(amax, fabsf(v[i][j]));
      nan |= isnan(v[i][j]);
    }
  }
  amax = warp_max(amax);
  if ((t & 31) == 0) warp_amax[t >> 5] = amax;
  const bool any_nan = __syncthreads_or(nan) != 0;  // also the barrier before warp_amax is read
  amax = 0.f;
  for (int i = 0; i < static_cast<int>(blockDim.x >> 5); ++i) amax = fmaxf(amax, warp_amax[i]);
  const float scale = scale_of(amax, any_nan);
  const long padded_cols = static_cast<long>(col_blocks) * kTile;
  const long block_elems = static_cast<long>(row_blocks) * kTile * padded_cols;
  uint8_t* qb = q + batch * block_elems;
  uint64_t packed[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    packed[i] = pack_e4m3(v[i], scale);
    *reinterpret_cast<uint64_t*>(qb + static_cast<long>(r0 + i) * padded_cols + col) = packed[i];
  }
  if (t == 0) s[(batch * row_blocks + blockIdx.y) * col_blocks + blockIdx.x] = scale;
  if constexpr (kBoth) {
    const long padded_rows = static_cast<long>(row_blocks) * kTile;
    uint8_t* qtb = qt + batch * block_elems;
#pragma unroll
    for (int j = 0; j < 8; ++j) {  // row col + j of qt: byte j of each of this thread's 8 rows
      uint64_t out = 0;
#pragma unroll
      for (int i = 0; i < 8; ++i) out |= ((packed[i] >> (8 * j)) & 0xffu) << (8 * i);
      *reinterpret_cast<uint64_t*>(qtb + static_cast<long>(col + j) * padded_rows + r0) = out;
    }
    if (t == 0) st[(batch * col_blocks + blockIdx.x) * row_blocks + blockIdx.y] = scale;
  }
}

bool is_float_input(const at::Tensor& t) { return ptk::is_activation(t); }

using ptk::dispatch;

long round_up(long n) { return (n + kTile - 1) / kTile * kTile; }

void require_fp8(const at::Tensor& t, const char* name) {
  require(t.scalar_type() == PTK_FP8_SCALAR_TYPE, std::string(name) + ": not float8_e4m3fn");
}

void require_f32(const at::Tensor& t, const char* name) {
  require(t.scalar_type() == c10::ScalarType::Float, std::string(name) + ": not float32");
}

void require_aligned(const at::Tensor& t, const char* name) {
  require(reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0, std::string(name) + ": data not 16-byte aligned");
}

std::string shape_of(const at::Tensor& t) {
  std::string out = "[";
  for (int64_t i = 0; i < t.dim(); ++i) out += (i ? ", " : "") + std::to_string(t.size(i));
  return out + "]";
}

// ---- Triton cubins ----

struct CubinKernel {
  CUmodule module = nullptr;
  CUfunction function = nullptr;
  int threads = 0;
  int shared = 0;
  int params = 0;
  int tile0 = 0, tile1 = 0;  // the output tile of one program (rows x columns of c, or of each expert's c)
};

std::mutex cubin_mutex;
std::map<std::pair<int, int>, CubinKernel> cubins;  // (slot, device) -> kernel

void check_cu(CUresult rc, const std::string& what) {
  if (rc == CUDA_SUCCESS) return;
  const char* text = nullptr;
  cuGetErrorString(rc, &text);
  throw std::runtime_error(what + ": " + (text ? text : "CUDA driver error " + std::to_string(static_cast<int>(rc))));
}

const CubinKernel& cubin_for(int slot, int device, const char* what) {
  std::lock_guard<std::mutex> lock(cubin_mutex);
  auto it = cubins.find({slot, device});
  require(it != cubins.end(), std::string(what) + ": kernel not loaded for cuda:" + std::to_string(device));
  return it->second;
}

// Launches with the given argument values, then null pointers for the trailing parameters the Triton version adds
// (global and profile scratch; the build checks that the kernels need none).
void launch(const CubinKernel& k, unsigned gx, unsigned gy, unsigned gz, std::vector<CUdeviceptr> pointers,
            std::vector<int32_t> ints, const char* what) {
  std::vector<void*> args;
  args.reserve(k.params);
  for (auto& p : pointers) args.push_back(&p);
  for (auto& i : ints) args.push_back(&i);
  require(static_cast<int>(args.size()) <= k.params, std::string(what) + ": the cubin takes fewer parameters than given");
  std::vector<CUdeviceptr> extra(k.params - args.size(), 0);
  for (auto& p : extra) args.push_back(&p);
  if (gx == 0 || gy == 0 || gz == 0) return;
  auto stream = reinterpret_cast<CUstream>(c10::cuda::getCurrentCUDAStream().stream());
  check_cu(cuLaunchKernel(k.function, gx, gy, gz, k.threads, 1, 1, k.shared, stream, args.data(), nullptr), what);
}

CUdeviceptr ptr(const at::Tensor& t) { return reinterpret_cast<CUdeviceptr>(t.data_ptr()); }

// ---- TMA + wgmma kernels (native/kernels/sm90a/fp8_gemm_wgmma.cu): raw-pointer launchers, 0 = launched ----

using WgmmaMGrouped = int (*)(const void* a, const float* a_scale, const void* b, const float* b_scale, void* c,
                              const int* block_expert, int m, int n, int k, int e, cudaStream_t stream);
using WgmmaKGrouped = int (*)(const void* a, const float* a_scale, const void* b, const float* b_scale, void* c,
                              const int* segments, int na, int nb, int m, int e, cudaStream_t stream);  // c: fp32 or bf16
struct WgmmaLaunchers {
  WgmmaMGrouped mgrouped = nullptr;
  WgmmaKGrouped kgrouped = nullptr;       // c fp32
  WgmmaKGrouped kgrouped_bf16 = nullptr;  // c bf16
};
struct Wgmma {
  void* library = nullptr;
  WgmmaLaunchers per_tile, persistent;
  struct Use {
    bool persistent;
    long min_dim;  // the GEMMs with both weight dimensions at least this wide
  };
  std::map<int, Use> devices;  // where the GEMMs use it
};
Wgmma wgmma;  // guarded by cubin_mutex

// The wgmma launchers `device` uses for a GEMM with weight dimensions d0 x d1, or nulls when the Triton cubins run it.
WgmmaLaunchers wgmma_on(int device, long d0, long d1) {
  std::lock_guard<std::mutex> lock(cubin_mutex);
  const auto it = wgmma.devices.find(device);
  if (it == wgmma.devices.end() || d0 < it->second.min_dim || d1 < it->second.min_dim) return {};
  return it->second.persistent ? wgmma.persistent : wgmma.per_tile;
}

// The three launchers named `prefix`, `prefix`_bf16 for the k-grouped one; false if any is missing.
bool resolve(void* library, const char* mgrouped, const char* kgrouped, WgmmaLaunchers& out) {
  out.mgrouped = reinterpret_cast<WgmmaMGrouped>(dlsym(library, mgrouped));
  out.kgrouped = reinterpret_cast<WgmmaKGrouped>(dlsym(library, kgrouped));
  out.kgrouped_bf16 = reinterpret_cast<WgmmaKGrouped>(dlsym(library, (std::string(kgrouped) + "_bf16").c_str()));
  return out.mgrouped && out.kgrouped && out.kgrouped_bf16;
}

void check_wgmma(int rc, const char* what) {
  if (rc == 0) return;
  const char* why = rc == 1 ? "sizes not multiples of 128" : rc == 2 ? "cuTensorMapEncodeTiled refused an operand"
                                                                     : "the launch failed";
  require(false, std::string(what) + " (wgmma): " + why + " (rc " + std::to_string(rc) + ")");
}
// The six tensors of a grouped GEMM call: FP8 operands a, b with float32 scales, the int32 expert table, the output.
struct GemmArgs {
  const at::Tensor& a;
  const at::Tensor& sa;
  const at::Tensor& b;
  const at::Tensor& sb;
  const at::Tensor& table;
  const at::Tensor& c;
};

GemmArgs gemm_args(void* ah, void* sah, void* bh, void* sbh, void* th, const char* table_name, void* ch) {
  GemmArgs g{tensor_arg(ah, "a"), tensor_arg(sah, "a_scale"), tensor_arg(bh, "b"), tensor_arg(sbh, "b_scale"),
             tensor_arg(th, table_name), tensor_arg(ch, "c")};
  require_fp8(g.a, "a");
  require_fp8(g.b, "b");
  require_f32(g.sa, "a_scale");
  require_f32(g.sb, "b_scale");
  require(g.table.scalar_type() == c10::ScalarType::Int && g.table.dim() == 1, std::string(table_name) + ": must be an int32 vector");
  for (const auto* t : {&g.a, &g.sa, &g.b, &g.sb, &g.table, &g.c}) require_aligned(*t, "grouped GEMM operand");
  return g;
}
int quant_blocks_impl(void* wh, void* qh, void* sh, void* qth, void* sth) {
  return guarded([&] {
    const auto& w = tensor_arg(wh, "w");
    const auto& q = tensor_arg(qh, "q");
    const auto& s = tensor_arg(sh, "s");
    const bool both = qth != nullptr;
    require(is_float_input(w) && w.dim() >= 2, "fp8_quant_blocks: w must be (..., N, K) float32 or bfloat16, got " + shape_of(w));
    require_fp8(q, "q");
    require_f32(s, "s");
    const long rows = w.size(-2), cols = w.size(-1);
    const long batch = rows * cols == 0 ? 0 : w.numel() / (rows * cols);
    const long prow = round_up(rows), pcol = round_up(cols);
    require(rows < (1L << 30) && cols < (1L << 30) && batch < 65536, "fp8_quant_blocks: shape out of range " + shape_of(w));
    require(q.numel() == batch * prow * pcol && q.dim() == w.dim() && q.size(-2) == prow && q.size(-1) == pcol
                && s.numel() == batch * (prow / kTile) * (pcol / kTile) && s.dim() == w.dim(),
            "fp8_quant_blocks: q " + shape_of(q) + " / s " + shape_of(s) + " do not fit w " + shape_of(w));
    uint8_t* qt_ptr = nullptr;
    float* st_ptr = nullptr;
    if (both) {
      const auto& qt = tensor_arg(qth, "qt");
      const auto& st = tensor_arg(sth, "st");
      require_fp8(qt, "qt");
      require_f32(st, "st");
      require(qt.numel() == q.numel() && qt.dim() == w.dim() && qt.size(-2) == pcol && qt.size(-1) == prow
                  && st.numel() == s.numel() && st.dim() == w.dim() && st.size(-2) == pcol / kTile,
              "fp8_quant_blocks2: qt " + shape_of(qt) + " / st " + shape_of(st) + " do not fit w " + shape_of(w));
      require_aligned(qt, "qt");
      qt_ptr = static_cast<uint8_t*>(qt.data_ptr());
      st_ptr = st.data_ptr<float>();
    }
    require_aligned(q, "q");
    if (batch == 0) return;
    c10::cuda::CUDAGuard guard(w.device());
    auto stream = c10::cuda::getCurrentCUDAStream();
    const dim3 grid(static_cast<unsigned>(pcol / kTile), static_cast<unsigned>(prow / kTile), static_cast<unsigned>(batch));
    dispatch(w.scalar_type(), [&](auto t) {
      using T = decltype(t);
      const auto args = std::make_tuple(static_cast<const T*>(w.data_ptr()), static_cast<uint8_t*>(q.data_ptr()),
                                        s.data_ptr<float>(), static_cast<int>(rows), static_cast<int>(cols),
                                        static_cast<int>(prow / kTile), static_cast<int>(pcol / kTile),
                                        vector_ok<T>(w, cols, 8), qt_ptr, st_ptr);
      std::apply([&](auto... a) {
        if (both) quant_blocks_kernel<T, true><<<grid, 256, 0, stream>>>(a...);
        else quant_blocks_kernel<T, false><<<grid, 256, 0, stream>>>(a...);
      }, args);
    });
    check_launch("fp8_quant_blocks");
  });
}

}  // namespace

extern "C" {

// x (M, K) -> q (M, Kp), s (M, Kp/128).
int ptk_fp8_quant_rows(void* xh, void* qh, void* sh) {
  return guarded([&] {
    const auto& x = tensor_arg(xh, "x");
    const auto& q = tensor_arg(qh, "q");
    const auto& s = tensor_arg(sh, "s");
    require(is_float_input(x) && x.dim() == 2, "fp8_quant_rows: x must be 2-D float32 or bfloat16, got " + shape_of(x));
    require_fp8(q, "q");
    require_f32(s, "s");
    const long rows = x.size(0), cols = x.size(1), padded = round_up(cols);
    require(cols > 0 && cols < (1L << 30), "fp8_quant_rows: width out of range");
    require(q.dim() == 2 && q.size(0) == rows && q.size(1) == padded && s.dim() == 2 && s.size(0) == rows
                && s.size(1) == padded / kTile,
            "fp8_quant_rows: q " + shape_of(q) + " / s " + shape_of(s) + " do not fit x " + shape_of(x));
    if (rows == 0) return;
    c10::cuda::CUDAGuard guard(x.device());
    auto stream = c10::cuda::getCurrentCUDAStream();
    const int tiles_per_row = static_cast<int>(padded / kTile);
    const long halves = rows * tiles_per_row;  // half-warps, one per tile
    const long blocks = (halves + 15) / 16;
    require(blocks < (1L << 31), "fp8_quant_rows: too many tiles");
    dispatch(x.scalar_type(), [&](auto t) {
      using T = decltype(t);
      quant_rows_kernel<T><<<static_cast<unsigned>(blocks), 256, 0, stream>>>(
          static_cast<const T*>(x.data_ptr()), static_cast<uint8_t*>(q.data_ptr()), s.data_ptr<float>(), rows,
          static_cast<int>(cols), tiles_per_row, vector_ok<T>(x, cols, 8));
    });
    check_launch("fp8_quant_rows");
  });
}

// x (M, N), M % 128 == 0 -> q (Np, M), s (Np, M/128).
int ptk_fp8_quant_cols(void* xh, void* qh, void* sh) {
  return guarded([&] {
    const auto& x = tensor_arg(xh, "x");
    const auto& q = tensor_arg(qh, "q");
    const auto& s = tensor_arg(sh, "s");
    require(is_float_input(x) && x.dim() == 2, "fp8_quant_cols: x must be 2-D float32 or bfloat16, got " + shape_of(x));
    require_fp8(q, "q");
    require_f32(s, "s");
    const long rows = x.size(0), cols = x.size(1), padded = round_up(cols);
    require(rows % kTile == 0 && rows < (1L << 30) && cols < (1L << 30), "fp8_quant_cols: rows must be a multiple of 128, got " + shape_of(x));
    require(q.dim() == 2 && q.size(0) == padded && q.size(1) == rows && s.dim() == 2 && s.size(0) == padded
                && s.size(1) == rows / kTile,
            "fp8_quant_cols: q " + shape_of(q) + " / s " + shape_of(s) + " do not fit x " + shape_of(x));
    if (rows == 0 || cols == 0) return;
    c10::cuda::CUDAGuard guard(x.device());
    auto stream = c10::cuda::getCurrentCUDAStream();
    const dim3 grid(static_cast<unsigned>(padded / kColsPerBlock), static_cast<unsigned>(rows / kTile));
    dispatch(x.scalar_type(), [&](auto t) {
      using T = decltype(t);
      quant_cols_kernel<<<grid, 256, 0, stream>>>(
          PlainSource<T>{static_cast<const T*>(x.data_ptr()), vector_ok<T>(x, cols, 8)},
          static_cast<uint8_t*>(q.data_ptr()), s.data_ptr<float>(), static_cast<int>(rows), static_cast<int>(cols));
    });
    check_launch("fp8_quant_cols");
  });
}

// xq (M, Kp) FP8 with tile scales xs (M, Kp/128), M % 128 == 0 -> q (Kp, M), s (Kp, M/128): quant_cols of the
// dequantised values, computed in registers.
int ptk_fp8_requant_cols(void* xqh, void* xsh, void* qh, void* sh) {
  return guarded([&] {
    const auto& xq = tensor_arg(xqh, "xq");
    const auto& xs = tensor_arg(xsh, "xs");
    const auto& q = tensor_arg(qh, "q");
    const auto& s = tensor_arg(sh, "s");
    require_fp8(xq, "xq");
    require_f32(xs, "xs");
    require_fp8(q, "q");
    require_f32(s, "s");
    require(xq.dim() == 2, "fp8_requant_cols: xq must be 2-D, got " + shape_of(xq));
    const long rows = xq.size(0), cols = xq.size(1);
    require(rows % kTile == 0 && cols % kTile == 0 && rows < (1L << 30) && cols < (1L << 30),
            "fp8_requant_cols: xq must be (M, Kp) with multiples of 128, got " + shape_of(xq));
    require(xs.dim() == 2 && xs.size(0) == rows && xs.size(1) == cols / kTile, "fp8_requant_cols: xs " + shape_of(xs));
    require(q.dim() == 2 && q.size(0) == cols && q.size(1) == rows && s.dim() == 2 && s.size(0) == cols
                && s.size(1) == rows / kTile,
            "fp8_requant_cols: q " + shape_of(q) + " / s " + shape_of(s) + " do not fit xq " + shape_of(xq));
    require(reinterpret_cast<uintptr_t>(xq.data_ptr()) % 8 == 0, "fp8_requant_cols: xq data not 8-byte aligned");
    if (rows == 0 || cols == 0) return;
    c10::cuda::CUDAGuard guard(xq.device());
    auto stream = c10::cuda::getCurrentCUDAStream();
    const dim3 grid(static_cast<unsigned>(cols / kColsPerBlock), static_cast<unsigned>(rows / kTile));
    quant_cols_kernel<<<grid, 256, 0, stream>>>(
        Fp8TileSource{static_cast<const uint8_t*>(xq.data_ptr()), xs.data_ptr<float>()},
        static_cast<uint8_t*>(q.data_ptr()), s.data_ptr<float>(), static_cast<int>(rows), static_cast<int>(cols));
    check_launch("fp8_requant_cols");
  });
}

// w (..., N, K) -> q (..., Np, Kp), s (..., Np/128, Kp/128).
int ptk_fp8_quant_blocks(void* wh, void* qh, void* sh) { return quant_blocks_impl(wh, qh, sh, nullptr, nullptr); }

int ptk_fp8_quant_blocks2(void* wh, void* qh, void* sh, void* qth, void* sth) {
  return quant_blocks_impl(wh, qh, sh, qth, sth);
}

// Loads a cubin for `slot` (0 = mgrouped, 1 = kgrouped) on `device`: entry `name`, launched with 32 * warps threads
// and `shared` bytes of dynamic shared memory, taking `params` parameters; one program computes a tile0 x tile1 tile
// (tile0 divides 128, tile1 is a multiple of 128 dividing 1024), programs numbered along a one-dimensional grid.
int ptk_fp8_load_kernel(int slot, int device, const char* path, const char* name, int warps, int shared, int params,
                        int tile0, int tile1) {
  return guarded([&] {
    require(slot == 0 || slot == 1, "fp8_load_kernel: slot must be 0 or 1");
    require(path && name && warps > 0 && warps <= 32 && shared >= 0 && params > 0, "fp8_load_kernel: bad arguments");
    require(tile0 >= 16 && kTile % tile0 == 0 && tile1 >= kTile && tile1 % kTile == 0 && 1024 % tile1 == 0,
            "fp8_load_kernel: tile " + std::to_string(tile0) + " x " + std::to_string(tile1) + " (rows must divide 128, "
            "columns be a multiple of 128)");
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
    require(cudaFree(nullptr) == cudaSuccess, "fp8_load_kernel: cannot initialise the CUDA context");  // makes the primary context current
    CubinKernel k;
    check_cu(cuModuleLoad(&k.module, path), std::string("fp8_load_kernel: cuModuleLoad ") + path);
    check_cu(cuModuleGetFunction(&k.function, k.module, name), std::string("fp8_load_kernel: no entry ") + name + " in " + path);
    if (shared > 48 * 1024)
      check_cu(cuFuncSetAttribute(k.function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, shared),
               "fp8_load_kernel: shared memory " + std::to_string(shared));
    k.threads = 32 * warps;
    k.shared = shared;
    k.params = params;
    k.tile0 = tile0;
    k.tile1 = tile1;
    std::lock_guard<std::mutex> lock(cubin_mutex);
    auto& slot_entry = cubins[{slot, device}];
    if (slot_entry.module) cuModuleUnload(slot_entry.module);
    slot_entry = k;
  });
}

// Switches the grouped GEMMs on `device` whose weight dimensions are both at least `min_dim` to the wgmma library at
// `path` (loaded once per process; its persistent kernels when `persistent` != 0), or all of them back to the Triton
// cubins when `path` is null or empty. Refused off compute capability 9.0 (wgmma and TMA are sm_90a).
int ptk_fp8_use_wgmma(int device, const char* path, int persistent, int min_dim) {
  return guarded([&] {
    std::lock_guard<std::mutex> lock(cubin_mutex);
    if (path == nullptr || *path == 0) {
      wgmma.devices.erase(device);
      return;
    }
    int major = 0, minor = 0;
    require(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess
                && cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) == cudaSuccess,
            "fp8_use_wgmma: cannot read the compute capability of cuda:" + std::to_string(device));
    require(major == 9 && minor == 0, "fp8_use_wgmma: the wgmma kernels are built for sm_90a; cuda:" + std::to_string(device)
            + " is sm_" + std::to_string(major) + std::to_string(minor));
    if (wgmma.library == nullptr) {
      void* library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
      require(library != nullptr, std::string("fp8_use_wgmma: dlopen ") + path + ": " + (dlerror() ?: "unknown error"));
      WgmmaLaunchers per_tile, persistent_set;
      if (!resolve(library, "fp8_mgrouped_wgmma", "fp8_kgrouped_wgmma", per_tile)
          || !resolve(library, "fp8_mgrouped_wgmma_persistent", "fp8_kgrouped_wgmma_persistent", persistent_set)) {
        dlclose(library);
        require(false, std::string("fp8_use_wgmma: ") + path + " lacks some of the fp8_{m,k}grouped_wgmma[_persistent] launchers");
      }
      wgmma.library = library;
      wgmma.per_tile = per_tile;
      wgmma.persistent = persistent_set;
    }
    require(min_dim >= 0, "fp8_use_wgmma: min_dim " + std::to_string(min_dim) + " is negative");
    wgmma.devices[device] = {persistent != 0, min_dim};
  });
}

int ptk_fp8_gemm_mgrouped(void* ah, void* sah, void* bh, void* sbh, void* beh, void* ch) {
  return guarded([&] {
    const auto g = gemm_args(ah, sah, bh, sbh, beh, "block_expert", ch);
    const auto &a = g.a, &sa = g.sa, &b = g.b, &sb = g.sb, &be = g.table, &c = g.c;
    require(c.scalar_type() == c10::ScalarType::BFloat16, "fp8_gemm_mgrouped: c must be bfloat16");
    require(a.dim() == 2 && b.dim() == 3 && c.dim() == 2, "fp8_gemm_mgrouped: a (M, K), b (E, N, K), c (M, N)");
    const long m = a.size(0), k = a.size(1), e = b.size(0), n = b.size(1);
    require(m % kTile == 0 && k % kTile == 0 && n % kTile == 0 && b.size(2) == k && c.size(0) == m && c.size(1) == n,
            "fp8_gemm_mgrouped: a " + shape_of(a) + ", b " + shape_of(b) + ", c " + shape_of(c) + " (all multiples of 128)");
    require(sa.dim() == 2 && sa.size(0) == m && sa.size(1) == k / kTile && sb.dim() == 3 && sb.size(0) == e
                && sb.size(1) == n / kTile && sb.size(2) == k / kTile && be.numel() == m / kTile,
            "fp8_gemm_mgrouped: scales a " + shape_of(sa) + ", b " + shape_of(sb) + ", block_expert " + shape_of(be));
    require(m < (1L << 31) / kTile && n < (1L << 30) && k < (1L << 30), "fp8_gemm_mgrouped: too large");
    if (m == 0) return;
    c10::cuda::CUDAGuard guard(a.device());
    if (const auto fn = wgmma_on(a.get_device(), n, k).mgrouped) {
      check_wgmma(fn(a.data_ptr(), sa.data_ptr<float>(), b.data_ptr(), sb.data_ptr<float>(), c.data_ptr(), be.data_ptr<int>(),
                     static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), static_cast<int>(e),
                     c10::cuda::getCurrentCUDAStream().stream()),
                  "fp8_gemm_mgrouped");
      return;
    }
    const auto& kernel = cubin_for(0, a.get_device(), "fp8_gemm_mgrouped");
    require(n % kernel.tile1 == 0, "fp8_gemm_mgrouped: N " + std::to_string(n) + " is not a multiple of the kernel's tile "
            + std::to_string(kernel.tile1));
    launch(kernel, static_cast<unsigned>((m / kernel.tile0) * (n / kernel.tile1)), 1, 1,
           {ptr(a), ptr(sa), ptr(b), ptr(sb), ptr(c), ptr(be)},
           {static_cast<int32_t>(m), static_cast<int32_t>(n), static_cast<int32_t>(k)}, "fp8_gemm_mgrouped");
  });
}

int ptk_fp8_gemm_kgrouped(void* ah, void* sah, void* bh, void* sbh, void* segh, void* ch) {
  return guarded([&] {
    const auto g = gemm_args(ah, sah, bh, sbh, segh, "segments", ch);
    const auto &a = g.a, &sa = g.sa, &b = g.b, &sb = g.sb, &seg = g.table, &c = g.c;
    const bool bf16 = c.scalar_type() == c10::ScalarType::BFloat16;
    require(bf16 || c.scalar_type() == c10::ScalarType::Float, "fp8_gemm_kgrouped: c must be float32 or bfloat16");
    require(a.dim() == 2 && b.dim() == 2 && c.dim() == 3, "fp8_gemm_kgrouped: a (NA, M), b (NB, M), c (E, NA, NB)");
    const long na = a.size(0), m = a.size(1), nb = b.size(0), e = seg.size(0) - 1;
    require(e >= 1 && e < 65536 && na % kTile == 0 && nb % kTile == 0 && m % kTile == 0 && b.size(1) == m
                && c.size(0) == e && c.size(1) == na && c.size(2) == nb,
            "fp8_gemm_kgrouped: a " + shape_of(a) + ", b " + shape_of(b) + ", c " + shape_of(c) + ", segments " + shape_of(seg));
    require(sa.dim() == 2 && sa.size(0) == na && sa.size(1) == m / kTile && sb.dim() == 2 && sb.size(0) == nb
                && sb.size(1) == m / kTile,
            "fp8_gemm_kgrouped: scales a " + shape_of(sa) + ", b " + shape_of(sb));
    require(m < (1L << 31) && na < (1L << 30) && nb < (1L << 30), "fp8_gemm_kgrouped: too large");
    c10::cuda::CUDAGuard guard(a.device());
    const auto launchers = wgmma_on(a.get_device(), na, nb);
    const auto fn = bf16 ? launchers.kgrouped_bf16 : launchers.kgrouped;
    if (fn && m > 0) {   // no token columns: the Triton kernel writes the zeros (a TMA map needs a non-empty matrix)
      check_wgmma(fn(a.data_ptr(), sa.data_ptr<float>(), b.data_ptr(), sb.data_ptr<float>(), c.data_ptr(),
                     seg.data_ptr<int>(), static_cast<int>(na), static_cast<int>(nb), static_cast<int>(m), static_cast<int>(e),
                     c10::cuda::getCurrentCUDAStream().stream()),
                  "fp8_gemm_kgrouped");
      return;
    }
    const auto& kernel = cubin_for(1, a.get_device(), "fp8_gemm_kgrouped");
    require(na % kernel.tile0 == 0 && nb % kernel.tile1 == 0, "fp8_gemm_kgrouped: NA " + std::to_string(na) + ", NB "
            + std::to_string(nb) + " are not multiples of the kernel's tile");
    const at::Tensor out = bf16 ? c.new_empty(c.sizes(), c.options().dtype(at::kFloat)) : c;   // the cubin writes fp32
    launch(kernel, static_cast<unsigned>((na / kernel.tile0) * (nb / kernel.tile1)), static_cast<unsigned>(e), 1,
           {ptr(a), ptr(sa), ptr(b), ptr(sb), ptr(out), ptr(seg)},
           {static_cast<int32_t>(na), static_cast<int32_t>(nb), static_cast<int32_t>(m)}, "fp8_gemm_kgrouped");
    if (bf16) c.copy_(out);
  });
}

}  // extern "C"
