// Experiment (issue "DeepSeek-V3's FP8 recipe at speed"): a grouped, blockwise-scaled FP8 GEMM for the routed experts
// written for Hopper's tensor-memory accelerator (TMA) and warpgroup MMA (wgmma), the way DeepGEMM lays the work out,
// written here from the PTX ISA: one producer warpgroup streams 128 x 128 fp8 tiles of A and B into shared memory
// (5 stages, mbarrier-tracked, 128-byte swizzle) while two consumer warpgroups each multiply 64 rows of the 128-row
// tile on the tensor cores. Each 128-deep slice of K is accumulated by four m64n128k32 wgmma into a scratch
// accumulator and then promoted into the FP32 total with its scales (1x128 tiles of A, a 128x128 block of B):
// DeepSeek-V3's promotion interval of 128. While one consumer promotes, the other's wgmma run.
//
//   C (M, N) bf16 = for each 128-row block i of A: dequant(A[i]) dequant(B[block_expert[i]])^T   (block_expert -1:
//   a padding block, written as zeros); A (M, K) e4m3 with scales (M, K/128) fp32; B (E, N, K) e4m3 with scales
//   (E, N/128, K/128) fp32. M, N, K multiples of 128. The same contract as fp8_gemm_mgrouped (native/kernels/fp8_gemm.py).
// A second kernel does the Wgrad's k-grouped product (fp8_gemm_kgrouped's contract) on the same machinery.
//
// Built for sm_90a only, as a library of its own (scripts/gpu/build-kernels.sh: fp8-kernels/libposttrain_fp8_wgmma.so),
// which libposttrain_kernels.so loads when asked (ptk_fp8_use_wgmma) so the rest of the native library stays
// portable. PostTrain uses the persistent kernels by default on sm_90 for the GEMMs whose weight dimensions are both
// >= 1024 (the Triton GEMMs below) once the FP8 self-check passes on them (POSTTRAIN_FP8_WGMMA=0: the Triton GEMMs,
// =1: the per-tile kernels, =persistent: these for every GEMM; see Fp8Kernels). benchmarks/fp8-kernels/bench_wgmma.py builds the same file, diagnoses one tile with exact integers,
// checks it against a dequantised fp32 reference and the Triton kernels, and times it beside BF16 grouped_mm.
// History: written on 2026-12-05 without a GPU; compiled with ptxas (CUDA 12.4, sm_90a: 168 registers, no spills)
// through scripts/dev/check-native.sh on a machine without a GPU; first run on an H100 the same day: right at every
// shape on the first run, 1.04-1.33x the Triton GEMMs (README, FP8 training).
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

namespace {

constexpr int kBM = 128, kBN = 128, kBK = 128, kStages = 5, kThreads = 384;
constexpr int kTileBytes = kBM * kBK;   // one fp8 operand tile (A: 128 x 128; B: 128 x 128, as kBN == kBM)
constexpr int kGroupM = 8;              // tile rows walked together (L2 reuse of A and of a few experts' B)

__device__ __forceinline__ uint32_t smem_u32(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

__device__ __forceinline__ void mbar_init(uint64_t* bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_u32(bar)), "r"(count) : "memory");
}

__device__ __forceinline__ void mbar_expect_tx(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_u32(bar)), "r"(bytes) : "memory");
}

__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_u32(bar)) : "memory");
}

// Waits until the barrier's phase with this parity has completed.
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "WAIT_LOOP:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT_LOOP;\n"
      "}\n" ::"r"(smem_u32(bar)),
      "r"(parity)
      : "memory");
}

// A 2D box of the tensor map (x: the inner coordinate, in elements) into shared memory; completes on the barrier.
__device__ __forceinline__ void tma_load_2d(void* dst, const CUtensorMap* map, uint64_t* bar, int x, int y) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];" ::"r"(
          smem_u32(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_u32(bar)), "r"(x), "r"(y)
      : "memory");
}

// wgmma shared-memory matrix descriptor of a K-major operand stored as TMA's 128-byte swizzle writes it: rows of 128
// bytes, 8-row (1024-byte) swizzle atoms; the start address may step by 32 bytes inside a row for the next k32 slice.
__device__ __forceinline__ uint64_t desc_sw128(const void* p) {
  const uint64_t addr = smem_u32(p);
  uint64_t d = (addr & 0x3FFFF) >> 4;          // start address (bits 0-13, in 16-byte units)
  d |= uint64_t(1) << 16;                      // leading-dimension byte offset: unused for swizzled K-major (1)
  d |= uint64_t(1024 >> 4) << 32;              // stride byte offset: one 8-row atom
  d |= uint64_t(1) << 62;                      // layout: 128-byte swizzle
  return d;
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait_all() { asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory"); }
// Keeps the compiler from moving reads or writes of an accumulator register across the asynchronous MMA.
__device__ __forceinline__ void fence_operand(float& r) { asm volatile("" : "+f"(r)::"memory"); }

// D (64 x 128 fp32, this thread's 64 values) (+)= A (64 x 32 e4m3, K-major in shared memory) x B (128 x 32 e4m3,
// K-major): one warpgroup-wide asynchronous tensor-core op. scale_d = 0 overwrites D, 1 accumulates into it.
__device__ __forceinline__ void wgmma_m64n128k32_e4m3(float (&d)[64], uint64_t desc_a, uint64_t desc_b, int scale_d) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
      "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
      "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
      "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
      "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
      "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
      "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
      "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(desc_a), "l"(desc_b), "r"(scale_d));
}

// The shared-memory ring (kStages stages of an A and a B tile) and its barriers, at a 1024-byte boundary of the shared
// window (where the swizzle atoms must start).
struct Ring {
  uint8_t* a;
  uint8_t* b;
  uint64_t* full;    // stage s loaded: the producer's expect_tx arrival + the bytes of both tiles
  uint64_t* empty;   // stage s read: one arrival per consumer warp (2 warpgroups x 4 warps)
};

__device__ __forceinline__ Ring carve_ring(uint8_t* smem_raw) {
  uint8_t* smem = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
  Ring r;
  r.a = smem;
  r.b = smem + kStages * kTileBytes;
  r.full = reinterpret_cast<uint64_t*>(r.b + kStages * kTileBytes);
  r.empty = r.full + kStages;
  return r;
}

constexpr size_t kSmemBytes = size_t(kStages) * 2 * kTileBytes + 2 * kStages * sizeof(uint64_t) + 1024;

// Program pid -> (tile row, tile column), kGroupM tile rows at a time down the columns (L2 reuse).
__device__ __forceinline__ void tile_of(int pid, int tiles_m, int tiles_n, int& tile_m, int& tile_n) {
  const int width = kGroupM * tiles_n;
  const int first_m = (pid / width) * kGroupM;
  const int size_m = min(tiles_m - first_m, kGroupM);
  tile_m = first_m + (pid % width) % size_m;
  tile_n = (pid % width) / size_m;
}

// A 128 x 128 output tile of zeros (a block with no work; the whole block leaves before any barrier).
template <typename T>
__device__ __forceinline__ void zero_tile(T* c, int ld, int r0, int c0) {
  for (int i = threadIdx.x; i < kBM * kBN; i += kThreads) c[size_t(r0 + i / kBN) * ld + c0 + i % kBN] = T(0.f);
}

__device__ __forceinline__ void init_ring(const Ring& r) {
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(&r.full[s], 1);
      mbar_init(&r.empty[s], 8);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
  }
  __syncthreads();
}

// One thread streams the K slices [k_first, k_end) of A (rows from y_a) and B (rows from y_b) into the ring, from ring
// position `it` on (`it` counts the slices over the CTA's life, so a persistent CTA's next tile continues the ring).
__device__ __forceinline__ void stream_slices(const Ring& r, const CUtensorMap* map_a, const CUtensorMap* map_b, int k_first,
                                              int k_end, int y_a, int y_b, int& it) {
  for (int kb = k_first; kb < k_end; ++kb, ++it) {
    const int s = it % kStages, round = it / kStages;
    if (round > 0) mbar_wait(&r.empty[s], (round - 1) & 1);   // the consumers released this stage's last round
    mbar_expect_tx(&r.full[s], 2 * kTileBytes);
    tma_load_2d(r.a + s * kTileBytes, map_a, &r.full[s], kb * kBK, y_a);
    tma_load_2d(r.b + s * kTileBytes, map_b, &r.full[s], kb * kBK, y_b);
  }
}

// The producer warpgroup gives its registers to the consumers; true for the one thread that streams.
__device__ __forceinline__ bool producer_thread() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n");
  return threadIdx.x % 128 == 0;
}

// One consumer warpgroup's product of ring slice `it` (its 64 rows of A, all 128 rows of B) into part, overwriting
// it; the stage is released as soon as the tensor cores have read it.
__device__ __forceinline__ void consume(const Ring& r, int it, int cw, float (&part)[64]) {
  const int s = it % kStages;
  mbar_wait(&r.full[s], (it / kStages) & 1);
  const uint8_t* a_tile = r.a + s * kTileBytes + cw * 64 * 128;
  const uint8_t* b_tile = r.b + s * kTileBytes;
#pragma unroll
  for (int i = 0; i < 64; ++i) fence_operand(part[i]);
  wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) wgmma_m64n128k32_e4m3(part, desc_sw128(a_tile + kk * 32), desc_sw128(b_tile + kk * 32), kk > 0);
  wgmma_commit();
  wgmma_wait_all();
#pragma unroll
  for (int i = 0; i < 64; ++i) fence_operand(part[i]);
  if (threadIdx.x % 32 == 0) mbar_arrive(&r.empty[s]);   // this warp has read the stage
}

// Two adjacent output values (columns col, col + 1 of one row) in one 8- or 4-byte store.
__device__ __forceinline__ void store_pair(float* p, float x, float y) { *reinterpret_cast<float2*>(p) = make_float2(x, y); }
__device__ __forceinline__ void store_pair(__nv_bfloat16* p, float x, float y) {
  *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(x, y);
}

// Consumer thread geometry: the warpgroup's 64 rows start at 64 cw; this thread's accumulator rows are r0 (d[4i],
// d[4i + 1]) and r0 + 8 (d[4i + 2], d[4i + 3]), its columns 8 i + c0 and 8 i + c0 + 1 for i < 16.
struct Lanes {
  int cw, r0, c0;
};

__device__ __forceinline__ Lanes consumer_lanes() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n");
  const int tid = threadIdx.x % 128, lane = tid % 32;
  Lanes l;
  l.cw = threadIdx.x / 128 - 1;
  l.r0 = l.cw * 64 + (tid / 32) * 16 + lane / 4;
  l.c0 = 2 * (lane % 4);
  return l;
}

// The consumers' part of one m-grouped tile: its K slices promoted with the 1x128 scales of A (rows r0, r0 + 8) and
// the 128x128 block scale of B, from ring position `it` on.
__device__ __forceinline__ void mgrouped_slices(const Ring& r, int& it, const Lanes& l, const float* __restrict__ a_scale,
                                                const float* __restrict__ b_scale, int m0, int tile_n, int expert, int N,
                                                int kblocks, float (&acc)[64], float (&part)[64]) {
  const float* sa0 = a_scale + size_t(m0 + l.r0) * kblocks;
  const float* sa1 = a_scale + size_t(m0 + l.r0 + 8) * kblocks;
  const float* sb = b_scale + (size_t(expert) * (N / 128) + tile_n) * kblocks;   // kBN == 128: one block of B per k
#pragma unroll
  for (int i = 0; i < 64; ++i) acc[i] = 0.f;
  for (int kb = 0; kb < kblocks; ++kb, ++it) {
    const float f0 = sa0[kb] * sb[kb], f1 = sa1[kb] * sb[kb];   // issued before the wait: their latency hides behind it
    consume(r, it, l.cw, part);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      acc[4 * i + 0] += part[4 * i + 0] * f0;
      acc[4 * i + 1] += part[4 * i + 1] * f0;
      acc[4 * i + 2] += part[4 * i + 2] * f1;
      acc[4 * i + 3] += part[4 * i + 3] * f1;
    }
  }
}

// The consumers' part of one k-grouped tile: token slices [t_first, t_end), each column promoted with its own B scale
// (a thread reads its 32 columns' scales per 128 tokens, before the stage's wait).
__device__ __forceinline__ void kgrouped_slices(const Ring& r, int& it, const Lanes& l, const float* __restrict__ a_scale,
                                                const float* __restrict__ b_scale, int a0, int b0, int t_first, int t_end,
                                                int tblocks, float (&acc)[64], float (&part)[64]) {
  const float* sa0 = a_scale + size_t(a0 + l.r0) * tblocks;
  const float* sa1 = a_scale + size_t(a0 + l.r0 + 8) * tblocks;
  const float* sbc = b_scale + size_t(b0 + l.c0) * tblocks;   // column 8 i + c0 + j is row (8 i + j) further down
#pragma unroll
  for (int i = 0; i < 64; ++i) acc[i] = 0.f;
  for (int tb = t_first; tb < t_end; ++tb, ++it) {
    const float fa0 = sa0[tb], fa1 = sa1[tb];
    float fb[32];
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      fb[2 * i] = sbc[size_t(8 * i) * tblocks + tb];
      fb[2 * i + 1] = sbc[size_t(8 * i + 1) * tblocks + tb];
    }
    consume(r, it, l.cw, part);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      acc[4 * i + 0] += part[4 * i + 0] * fa0 * fb[2 * i];
      acc[4 * i + 1] += part[4 * i + 1] * fa0 * fb[2 * i + 1];
      acc[4 * i + 2] += part[4 * i + 2] * fa1 * fb[2 * i];
      acc[4 * i + 3] += part[4 * i + 3] * fa1 * fb[2 * i + 1];
    }
  }
}

// This thread's accumulator values into the 128 x 128 output tile at (r0, c0) of a row-major matrix with `ld` columns.
template <typename T>
__device__ __forceinline__ void store_tile(T* c, int ld, int r0, int c0, const Lanes& l, const float (&acc)[64]) {
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    const int col = c0 + 8 * i + l.c0;
    store_pair(c + size_t(r0 + l.r0) * ld + col, acc[4 * i], acc[4 * i + 1]);
    store_pair(c + size_t(r0 + l.r0 + 8) * ld + col, acc[4 * i + 2], acc[4 * i + 3]);
  }
}

// One CTA per output tile (blockIdx.x, in tile_of's order).
__global__ void __launch_bounds__(kThreads, 1)
    fp8_mgrouped_wgmma_kernel(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_b,
                              const float* __restrict__ a_scale, const float* __restrict__ b_scale,
                              __nv_bfloat16* __restrict__ c, const int* __restrict__ block_expert, int M, int N, int K) {
  extern __shared__ uint8_t smem_raw[];
  int tile_m, tile_n;
  tile_of(blockIdx.x, M / kBM, N / kBN, tile_m, tile_n);
  const int m0 = tile_m * kBM, n0 = tile_n * kBN;
  const int expert = block_expert[tile_m];
  if (expert < 0) return zero_tile(c, N, m0, n0);   // a padding block
  const int kblocks = K / kBK;
  const Ring r = carve_ring(smem_raw);
  init_ring(r);
  int it = 0;
  if (threadIdx.x < 128) {
    if (producer_thread()) stream_slices(r, &map_a, &map_b, 0, kblocks, m0, expert * N + n0, it);
    return;
  }
  const Lanes l = consumer_lanes();
  float acc[64], part[64] = {};
  mgrouped_slices(r, it, l, a_scale, b_scale, m0, tile_n, expert, N, kblocks, acc, part);
  store_tile(c, N, m0, n0, l, acc);
}

// Wgrad: C[e] (NA, NB) = dequant(A[:, seg_e]) dequant(B[:, seg_e])^T over the token columns seg_e =
// [segments[e], segments[e + 1]) (multiples of 128); A (NA, M) and B (NB, M) e4m3 quantised along the tokens in 1x128
// tiles (scales (NA, M/128), (NB, M/128)). Both operands are K-major (K = tokens). One CTA per (tile, expert).
// TOut: float, or __nv_bfloat16 for weights kept in bf16 (rounded once from the fp32 accumulator, no fp32 round trip).
template <typename TOut>
__global__ void __launch_bounds__(kThreads, 1)
    fp8_kgrouped_wgmma_kernel(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_b,
                              const float* __restrict__ a_scale, const float* __restrict__ b_scale, TOut* __restrict__ c,
                              const int* __restrict__ segments, int NA, int NB, int M) {
  extern __shared__ uint8_t smem_raw[];
  int tile_a, tile_b;
  tile_of(blockIdx.x, NA / kBM, NB / kBN, tile_a, tile_b);
  const int a0 = tile_a * kBM, b0 = tile_b * kBN, expert = blockIdx.y;
  TOut* ce = c + size_t(expert) * NA * NB;
  const int t_first = segments[expert] / kBK, t_end = segments[expert + 1] / kBK;
  if (t_end <= t_first) return zero_tile(ce, NB, a0, b0);   // no token reached this expert: its gradient is zero
  const Ring r = carve_ring(smem_raw);
  init_ring(r);
  int it = 0;
  if (threadIdx.x < 128) {
    if (producer_thread()) stream_slices(r, &map_a, &map_b, t_first, t_end, a0, b0, it);
    return;
  }
  const Lanes l = consumer_lanes();
  float acc[64], part[64] = {};
  kgrouped_slices(r, it, l, a_scale, b_scale, a0, b0, t_first, t_end, M / kBK, acc, part);
  store_tile(ce, NB, a0, b0, l, acc);
}

// Persistent variants: a grid of at most one CTA per SM, each walking the output tiles blockIdx.x, + gridDim.x, ...;
// the ring and its barrier phases run on across a CTA's tiles, so the producer streams the next tile's slices while
// the consumers promote and store the last one. A tile's pipeline fill is then paid once per CTA, not once per tile:
// the Wgrad's contractions are only ~6 slices deep per expert at bench-moe-large. Tiles without work (a padding row
// block, an expert without tokens) are stored as zeros by the consumers.
// The skeleton: the producer's streaming thread runs produce(ring, t, it) and the consumers consume(ring, t, it, lanes,
// acc, part) for each of the CTA's tiles t < tiles, `it` being the ring position of the tile's first slice.
template <typename Produce, typename Consume>
__device__ __forceinline__ void run_persistent(uint8_t* smem_raw, int tiles, Produce produce, Consume consume) {
  const Ring r = carve_ring(smem_raw);
  init_ring(r);
  int it = 0;
  if (threadIdx.x < 128) {
    if (!producer_thread()) return;
    for (int t = blockIdx.x; t < tiles; t += gridDim.x) produce(r, t, it);
    return;
  }
  const Lanes l = consumer_lanes();
  float acc[64], part[64] = {};
  for (int t = blockIdx.x; t < tiles; t += gridDim.x) consume(r, t, it, l, acc, part);
}

__global__ void __launch_bounds__(kThreads, 1)
    fp8_mgrouped_wgmma_persistent_kernel(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_b,
                                         const float* __restrict__ a_scale, const float* __restrict__ b_scale,
                                         __nv_bfloat16* __restrict__ c, const int* __restrict__ block_expert, int M, int N,
                                         int K) {
  extern __shared__ uint8_t smem_raw[];
  const int tiles_m = M / kBM, tiles_n = N / kBN, kblocks = K / kBK;
  run_persistent(
      smem_raw, tiles_m * tiles_n,
      [&](const Ring& r, int t, int& it) {
        int tile_m, tile_n;
        tile_of(t, tiles_m, tiles_n, tile_m, tile_n);
        const int expert = block_expert[tile_m];
        if (expert >= 0) stream_slices(r, &map_a, &map_b, 0, kblocks, tile_m * kBM, expert * N + tile_n * kBN, it);
      },
      [&](const Ring& r, int t, int& it, const Lanes& l, float (&acc)[64], float (&part)[64]) {
        int tile_m, tile_n;
        tile_of(t, tiles_m, tiles_n, tile_m, tile_n);
        const int expert = block_expert[tile_m];
        if (expert >= 0) {
          mgrouped_slices(r, it, l, a_scale, b_scale, tile_m * kBM, tile_n, expert, N, kblocks, acc, part);
        } else {
#pragma unroll
          for (int i = 0; i < 64; ++i) acc[i] = 0.f;
        }
        store_tile(c, N, tile_m * kBM, tile_n * kBN, l, acc);
      });
}

// Tiles in expert-major order (an expert's tiles run together: its token slices stay in L2), tile_of's order inside;
// an expert without tokens runs no slices, so its tiles store the zeroed accumulator.
template <typename TOut>
__global__ void __launch_bounds__(kThreads, 1)
    fp8_kgrouped_wgmma_persistent_kernel(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_b,
                                         const float* __restrict__ a_scale, const float* __restrict__ b_scale,
                                         TOut* __restrict__ c, const int* __restrict__ segments, int NA, int NB, int M,
                                         int E) {
  extern __shared__ uint8_t smem_raw[];
  const int tiles_a = NA / kBM, tiles_b = NB / kBN, per_expert = tiles_a * tiles_b;
  auto where = [&](int t, int& expert, int& a0, int& b0) {
    expert = t / per_expert;
    int tile_a, tile_b;
    tile_of(t % per_expert, tiles_a, tiles_b, tile_a, tile_b);
    a0 = tile_a * kBM;
    b0 = tile_b * kBN;
  };
  run_persistent(
      smem_raw, per_expert * E,
      [&](const Ring& r, int t, int& it) {
        int expert, a0, b0;
        where(t, expert, a0, b0);
        stream_slices(r, &map_a, &map_b, segments[expert] / kBK, segments[expert + 1] / kBK, a0, b0, it);
      },
      [&](const Ring& r, int t, int& it, const Lanes& l, float (&acc)[64], float (&part)[64]) {
        int expert, a0, b0;
        where(t, expert, a0, b0);
        kgrouped_slices(r, it, l, a_scale, b_scale, a0, b0, segments[expert] / kBK, segments[expert + 1] / kBK, M / kBK,
                        acc, part);
        store_tile(c + size_t(expert) * NA * NB, NB, a0, b0, l, acc);
      });
}

// A row-major (rows, cols) fp8 matrix as a TMA map of 128 x 128 boxes with the 128-byte swizzle.
CUresult make_map(CUtensorMap* map, const void* base, uint64_t cols, uint64_t rows) {
  cuuint64_t dims[2] = {cols, rows};
  cuuint64_t strides[1] = {cols};   // bytes between rows (fp8: one byte per element)
  cuuint32_t box[2] = {kBK, 128};
  cuuint32_t elem[2] = {1, 1};
  return cuTensorMapEncodeTiled(map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, const_cast<void*>(base), dims, strides, box, elem,
                                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
}

}  // namespace

namespace {
// One CTA per SM at most for the persistent kernels (they take all of an SM's shared memory anyway).
unsigned persistent_grid(long tiles) {
  int device = 0, sms = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  return static_cast<unsigned>(tiles < (sms > 0 ? sms : 132) ? tiles : (sms > 0 ? sms : 132));
}

int launch_mgrouped(const void* a, const float* a_scale, const void* b, const float* b_scale, void* c, const int* block_expert,
                    int M, int N, int K, int E, cudaStream_t stream, bool persistent) {
  if (M <= 0 || N <= 0 || K <= 0 || E <= 0 || M % kBM || N % kBN || K % kBK) return 1;
  CUtensorMap map_a, map_b;
  if (make_map(&map_a, a, K, M) != CUDA_SUCCESS || make_map(&map_b, b, K, uint64_t(E) * N) != CUDA_SUCCESS) return 2;
  const long tiles = long(M / kBM) * (N / kBN);
  auto* out = static_cast<__nv_bfloat16*>(c);
  if (persistent) {
    cudaFuncSetAttribute(fp8_mgrouped_wgmma_persistent_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kSmemBytes));
    fp8_mgrouped_wgmma_persistent_kernel<<<persistent_grid(tiles), kThreads, kSmemBytes, stream>>>(
        map_a, map_b, a_scale, b_scale, out, block_expert, M, N, K);
  } else {
    cudaFuncSetAttribute(fp8_mgrouped_wgmma_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kSmemBytes));
    fp8_mgrouped_wgmma_kernel<<<unsigned(tiles), kThreads, kSmemBytes, stream>>>(map_a, map_b, a_scale, b_scale, out,
                                                                                block_expert, M, N, K);
  }
  return cudaGetLastError() == cudaSuccess ? 0 : 3;
}

template <typename TOut>
int launch_kgrouped(const void* a, const float* a_scale, const void* b, const float* b_scale, TOut* c, const int* segments,
                    int NA, int NB, int M, int E, cudaStream_t stream, bool persistent) {
  if (NA <= 0 || NB <= 0 || M <= 0 || E <= 0 || NA % kBM || NB % kBN || M % kBK) return 1;
  CUtensorMap map_a, map_b;
  if (make_map(&map_a, a, M, NA) != CUDA_SUCCESS || make_map(&map_b, b, M, NB) != CUDA_SUCCESS) return 2;
  const long per_expert = long(NA / kBM) * (NB / kBN);
  if (persistent) {
    cudaFuncSetAttribute(fp8_kgrouped_wgmma_persistent_kernel<TOut>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kSmemBytes));
    fp8_kgrouped_wgmma_persistent_kernel<TOut><<<persistent_grid(per_expert * E), kThreads, kSmemBytes, stream>>>(
        map_a, map_b, a_scale, b_scale, c, segments, NA, NB, M, E);
  } else {
    cudaFuncSetAttribute(fp8_kgrouped_wgmma_kernel<TOut>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kSmemBytes));
    fp8_kgrouped_wgmma_kernel<TOut><<<dim3(unsigned(per_expert), E), kThreads, kSmemBytes, stream>>>(
        map_a, map_b, a_scale, b_scale, c, segments, NA, NB, M);
  }
  return cudaGetLastError() == cudaSuccess ? 0 : 3;
}
}  // namespace

// The launchers (raw pointers, the caller's stream). Return: 0 = launched; 1 = bad sizes; 2 = a tensor map could not
// be made; 3 = the launch failed (cudaGetLastError).
// M-grouped (Fprop, Dgrad): c (M, N) bf16; a (M, K) e4m3 with scales (M, K/128); b (E, N, K) e4m3 with scales
// (E, N/128, K/128); block_expert (M/128) int32, -1 = a padding block (zeros).
extern "C" int fp8_mgrouped_wgmma(const void* a, const float* a_scale, const void* b, const float* b_scale, void* c,
                                  const int* block_expert, int M, int N, int K, int E, cudaStream_t stream) {
  return launch_mgrouped(a, a_scale, b, b_scale, c, block_expert, M, N, K, E, stream, false);
}

extern "C" int fp8_mgrouped_wgmma_persistent(const void* a, const float* a_scale, const void* b, const float* b_scale,
                                             void* c, const int* block_expert, int M, int N, int K, int E,
                                             cudaStream_t stream) {
  return launch_mgrouped(a, a_scale, b, b_scale, c, block_expert, M, N, K, E, stream, true);
}

// K-grouped (Wgrad): c (E, NA, NB) fp32 (or bf16: the _bf16 entries); a (NA, M), b (NB, M) e4m3 with scales
// (NA, M/128), (NB, M/128); segments (E + 1) int32, multiples of 128.
extern "C" int fp8_kgrouped_wgmma(const void* a, const float* a_scale, const void* b, const float* b_scale, float* c,
                                  const int* segments, int NA, int NB, int M, int E, cudaStream_t stream) {
  return launch_kgrouped(a, a_scale, b, b_scale, c, segments, NA, NB, M, E, stream, false);
}

extern "C" int fp8_kgrouped_wgmma_bf16(const void* a, const float* a_scale, const void* b, const float* b_scale, void* c,
                                       const int* segments, int NA, int NB, int M, int E, cudaStream_t stream) {
  return launch_kgrouped(a, a_scale, b, b_scale, static_cast<__nv_bfloat16*>(c), segments, NA, NB, M, E, stream, false);
}

extern "C" int fp8_kgrouped_wgmma_persistent(const void* a, const float* a_scale, const void* b, const float* b_scale,
                                             float* c, const int* segments, int NA, int NB, int M, int E,
                                             cudaStream_t stream) {
  return launch_kgrouped(a, a_scale, b, b_scale, c, segments, NA, NB, M, E, stream, true);
}

extern "C" int fp8_kgrouped_wgmma_persistent_bf16(const void* a, const float* a_scale, const void* b, const float* b_scale,
                                                  void* c, const int* segments, int NA, int NB, int M, int E,
                                                  cudaStream_t stream) {
  return launch_kgrouped(a, a_scale, b, b_scale, static_cast<__nv_bfloat16*>(c), segments, NA, NB, M, E, stream, true);
}
