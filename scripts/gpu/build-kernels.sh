#!/usr/bin/env bash
# Builds native/kernels/posttrain_kernels.cu (fused RMSNorm and SwiGLU, forward and backward) into
# libposttrain_kernels.so with nvcc, against the PyTorch (libtorch) that PostTrain runs on and for the GPU of this
# machine. PostTrain finds it through POSTTRAIN_KERNELS_LIB or next to its own binaries, checks it against its plain
# ops on first use and falls back to them when it is missing or disagrees. Usage: scripts/gpu/build-kernels.sh [out.so]
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$here/.dist/libposttrain_kernels.so}"
mkdir -p "$(dirname "$out")"
read -r torchdir abi arch < <(python3 -c 'import torch, os
major, minor = torch.cuda.get_device_capability() if torch.cuda.is_available() else (9, 0)
print(os.path.dirname(torch.__file__), int(torch._C._GLIBCXX_USE_CXX11_ABI), f"{major}{minor}")')
nvcc="$(command -v nvcc || echo "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc")"
[ -x "$nvcc" ] || { echo "build-kernels: nvcc not found (set CUDA_HOME)" >&2; exit 1; }
"$nvcc" -O3 -std=c++17 -shared -Xcompiler -fPIC -gencode "arch=compute_$arch,code=sm_$arch" \
  -D_GLIBCXX_USE_CXX11_ABI="$abi" -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__ \
  -D__CUDA_NO_BFLOAT16_CONVERSIONS__ -D__CUDA_NO_HALF2_OPERATORS__ --expt-relaxed-constexpr \
  -I"$torchdir/include" -I"$torchdir/include/torch/csrc/api/include" \
  "$here/native/kernels/posttrain_kernels.cu" -o "$out.tmp" \
  -L"$torchdir/lib" -Xlinker -rpath="$torchdir/lib" -ltorch_cuda -lc10_cuda -ltorch_cpu -lc10
mv "$out.tmp" "$out"
echo "built $out (sm_$arch)"
