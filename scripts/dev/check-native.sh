#!/usr/bin/env bash
# Compile check of the native CUDA sources on a machine without a GPU or a CUDA PyTorch: CUDA 12.4's nvcc and the
# libtorch 1.13 headers that scripts/dev/cuda-toolkit.sh unpacks (or an nvcc already on PATH), object files only,
# for sm_90; the Hopper-only sources in native/kernels/sm90a/ for sm_90a (wgmma, TMA), linked as build-kernels.sh
# links them. It catches syntax, type and PTX errors (ptxas runs) before GPU time is spent, and prints each sm_90a
# kernel's registers and spills; the real build is scripts/gpu/build-kernels.sh on the GPU machine against the
# PyTorch PostTrain runs with. Usage: scripts/dev/check-native.sh
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
command -v nvcc >/dev/null || eval "$("$here/scripts/dev/cuda-toolkit.sh")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for src in "$here"/native/kernels/*.cu; do
  nvcc -O3 -std=c++17 -c -Xcompiler -fPIC,-Wno-deprecated-declarations -gencode arch=compute_90,code=sm_90 \
    -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__ -D__CUDA_NO_BFLOAT16_CONVERSIONS__ \
    -D__CUDA_NO_HALF2_OPERATORS__ --expt-relaxed-constexpr \
    "-DPTK_FP8_SCALAR_TYPE=static_cast<c10::ScalarType>(24)" \
    "$src" -o "$work/$(basename "$src").o"
  echo "compiled $(basename "$src")"
done
for src in "$here"/native/kernels/sm90a/*.cu; do
  [ -e "$src" ] || continue
  nvcc -O3 -std=c++17 -shared -Xcompiler -fPIC -gencode arch=compute_90a,code=sm_90a -Xptxas -v \
    "$src" -o "$work/$(basename "$src" .cu).so" -lcuda 2>&1 | grep -E "error|Function properties|registers|spill" || true
  [ -f "$work/$(basename "$src" .cu).so" ] || { echo "check-native: $(basename "$src") did not build" >&2; exit 1; }
  echo "compiled $(basename "$src") (sm_90a)"
done
