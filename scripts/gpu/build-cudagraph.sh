#!/usr/bin/env bash
# Builds native/cudagraph/posttrain_cudagraph.cpp into libposttrain_cudagraph.so against the PyTorch (libtorch) that
# PostTrain runs on, for CUDA-graph decoding (GenerationOptions.CudaGraphs). Needs python3 with torch (CUDA build),
# g++ and the CUDA headers (nvcc's include folder). Usage: scripts/gpu/build-cudagraph.sh [output.so]
# PostTrain finds the library through POSTTRAIN_CUDAGRAPH_LIB or next to its own binaries.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$here/.dist/libposttrain_cudagraph.so}"
mkdir -p "$(dirname "$out")"
read -r torchdir abi < <(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__), int(torch._C._GLIBCXX_USE_CXX11_ABI))')
cuda_home="${CUDA_HOME:-$(dirname "$(dirname "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")")}"
[ -f "$cuda_home/include/cuda_runtime_api.h" ] || { echo "build-cudagraph: no CUDA headers under $cuda_home/include (set CUDA_HOME)" >&2; exit 1; }
g++ -O2 -std=c++17 -shared -fPIC -D_GLIBCXX_USE_CXX11_ABI="$abi" \
  -I"$torchdir/include" -I"$torchdir/include/torch/csrc/api/include" -I"$cuda_home/include" \
  "$here/native/cudagraph/posttrain_cudagraph.cpp" -o "$out.tmp" \
  -L"$torchdir/lib" -Wl,-rpath,"$torchdir/lib" -ltorch_cuda -lc10_cuda -ltorch_cpu -lc10
mv "$out.tmp" "$out"
echo "built $out"
