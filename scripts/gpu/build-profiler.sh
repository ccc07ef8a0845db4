#!/usr/bin/env bash
# Builds native/profiler/posttrain_profiler.cpp into libposttrain_profiler.so against the PyTorch (libtorch) PostTrain
# runs on: libtorch's Kineto profiler for `bench-train --profile` (scripts/gpu/experiments/profile_train.sh).
# Needs python3 with torch and g++. Usage: scripts/gpu/build-profiler.sh [output.so]
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$here/.dist/libposttrain_profiler.so}"
mkdir -p "$(dirname "$out")"
read -r torchdir abi < <(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__), int(torch._C._GLIBCXX_USE_CXX11_ABI))')
g++ -O2 -std=c++17 -shared -fPIC -D_GLIBCXX_USE_CXX11_ABI="$abi" -Wno-interference-size \
  -I"$torchdir/include" -I"$torchdir/include/torch/csrc/api/include" \
  "$here/native/profiler/posttrain_profiler.cpp" -o "$out.tmp" \
  -L"$torchdir/lib" -Wl,-rpath,"$torchdir/lib" -ltorch_cpu -lc10
mv "$out.tmp" "$out"
echo "built $out"
