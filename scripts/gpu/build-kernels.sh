#!/usr/bin/env bash
# Builds libposttrain_kernels.so with nvcc from native/kernels/*.cu (fused RMSNorm and SwiGLU; the decode-step kernels; FP8 quantisation and
# the launcher of the grouped FP8 GEMMs), against the PyTorch (libtorch) that PostTrain runs on and for the GPU of
# this machine; then compiles the grouped FP8 GEMMs (native/kernels/fp8_gemm.py, Triton) ahead of time into
# fp8-kernels/ beside the library. PostTrain finds the library through POSTTRAIN_KERNELS_LIB or next to its own
# binaries (and the cubins in fp8-kernels/ next to the library), checks every kernel against its plain ops on first
# use and falls back to them when something is missing or disagrees. A failed Triton build leaves the library usable
# (the FP8 GEMMs then report why they are off). On a Hopper GPU (sm_90) it also builds the TMA + wgmma grouped FP8 GEMMs
# (native/kernels/sm90a/*.cu, sm_90a only) into fp8-kernels/libposttrain_fp8_wgmma.so, which the library loads by
# default there (POSTTRAIN_FP8_WGMMA=0: not); a failed build there leaves the Triton GEMMs. Usage: scripts/gpu/build-kernels.sh [out.so]
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$here/.dist/libposttrain_kernels.so}"
mkdir -p "$(dirname "$out")"
read -r torchdir abi arch < <(python3 -c 'import torch, os
major, minor = torch.cuda.get_device_capability() if torch.cuda.is_available() else (9, 0)
print(os.path.dirname(torch.__file__), int(torch._C._GLIBCXX_USE_CXX11_ABI), f"{major}{minor}")')
nvcc="$(command -v nvcc || echo "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc")"
[ -x "$nvcc" ] || { echo "build-kernels: nvcc not found (set CUDA_HOME)" >&2; exit 1; }
cudadir="$(dirname "$(dirname "$(readlink -f "$nvcc")")")"
# libcuda (driver API, for the cubins): the driver's copy at run time; the toolkit's stub if the linker needs one.
stubs=()
for d in "$cudadir/lib64/stubs" "$cudadir/targets/x86_64-linux/lib/stubs"; do [ -d "$d" ] && stubs+=(-L"$d"); done
"$nvcc" -O3 -std=c++17 -shared -Xcompiler -fPIC -gencode "arch=compute_$arch,code=sm_$arch" \
  -D_GLIBCXX_USE_CXX11_ABI="$abi" -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__ \
  -D__CUDA_NO_BFLOAT16_CONVERSIONS__ -D__CUDA_NO_HALF2_OPERATORS__ --expt-relaxed-constexpr \
  -I"$torchdir/include" -I"$torchdir/include/torch/csrc/api/include" \
  "$here"/native/kernels/*.cu -o "$out.tmp" \
  -L"$torchdir/lib" -Xlinker -rpath="$torchdir/lib" "${stubs[@]}" -ltorch_cuda -lc10_cuda -ltorch_cpu -lc10 -lcuda -ldl
mv "$out.tmp" "$out"
echo "built $out (sm_$arch)"
fp8dir="$(dirname "$out")/fp8-kernels"
if ! python3 "$here/native/kernels/fp8_gemm.py" "$fp8dir"; then
  echo "build-kernels: the grouped FP8 GEMMs did not build (Triton); FP8 experts keep the per-expert _scaled_mm path" >&2
fi
if [ "$arch" = 90 ]; then
  mkdir -p "$fp8dir"
  if "$nvcc" -O3 -std=c++17 -shared -Xcompiler -fPIC -gencode arch=compute_90a,code=sm_90a \
       "$here"/native/kernels/sm90a/fp8_gemm_wgmma.cu -o "$fp8dir/libposttrain_fp8_wgmma.so.tmp" "${stubs[@]}" -lcuda; then
    mv "$fp8dir/libposttrain_fp8_wgmma.so.tmp" "$fp8dir/libposttrain_fp8_wgmma.so"
    echo "built $fp8dir/libposttrain_fp8_wgmma.so (sm_90a)"
  else
    echo "build-kernels: the wgmma FP8 GEMMs did not build; the FP8 status line will say so and keep the Triton GEMMs" >&2
  fi
fi
