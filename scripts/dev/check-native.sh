#!/usr/bin/env bash
# Compile check of the native CUDA sources on a machine without a GPU or a CUDA PyTorch: nvcc and the libtorch
# headers from Debian (contrib/non-free: nvidia-cuda-toolkit 11.8, g++-11; main: libtorch-dev 1.13), object files
# only, for sm_90. It catches syntax and type errors before GPU time is spent; the real build is
# scripts/gpu/build-kernels.sh on the GPU machine against the PyTorch PostTrain runs with.
# Install once: add "contrib non-free" to the apt sources, then
#   apt-get install -y --no-install-recommends nvidia-cuda-toolkit g++-11 libtorch-dev
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
command -v nvcc >/dev/null || { echo "check-native: nvcc not found (see the header of this script)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Debian's libtorch-dev leaves out a generated CUDA header that c10/cuda includes; an empty one is enough to compile.
mkdir -p "$work/inc/c10/cuda/impl" && echo '#pragma once' > "$work/inc/c10/cuda/impl/cuda_cmake_macros.h"
for src in "$here"/native/kernels/*.cu; do
  nvcc -ccbin "${HOST_CXX:-g++-11}" -I"$work/inc" -O3 -std=c++17 -c -Xcompiler -fPIC -gencode arch=compute_90,code=sm_90 \
    -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__ -D__CUDA_NO_BFLOAT16_CONVERSIONS__ \
    -D__CUDA_NO_HALF2_OPERATORS__ --expt-relaxed-constexpr \
    "-DPTK_FP8_SCALAR_TYPE=static_cast<c10::ScalarType>(24)" \
    "$src" -o "$work/$(basename "$src").o"
  echo "compiled $(basename "$src")"
done
