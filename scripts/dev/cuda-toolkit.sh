#!/usr/bin/env bash
# A CUDA 12.4 compiler (nvcc, ptxas: Hopper's sm_90a, so wgmma and TMA compile) and the libtorch 1.13 headers on a
# machine without a GPU and without NVIDIA's apt repository: the Debian packages (trixie non-free for CUDA, bookworm
# for libtorch) are downloaded with apt-get and unpacked into one folder, never installed, so the machine's own
# packages stay as they are. For compile checks only (scripts/dev/check-native.sh); the real build is
# scripts/gpu/build-kernels.sh on the GPU machine against the PyTorch PostTrain runs with.
# Usage: eval "$(scripts/dev/cuda-toolkit.sh)"   (prints the PATH and POSTTRAIN_DEV_CUDA exports; ~1 GB download once,
# kept in ${POSTTRAIN_DEV_CUDA:-/tmp/posttrain-cuda124}).
set -euo pipefail
root="${POSTTRAIN_DEV_CUDA:-/tmp/posttrain-cuda124}"
bin="$root/usr/lib/nvidia-cuda-toolkit/bin"
if [ ! -x "$bin/nvcc" ] || [ ! -d "$root/usr/include/torch" ] || [ ! -d "$root/usr/include/thrust" ]; then
  apt="$root.apt"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs" "$root"
  echo "deb http://deb.debian.org/debian trixie main contrib non-free" > "$apt/trixie.list"
  echo "deb http://deb.debian.org/debian bookworm main" > "$apt/bookworm.list"
  fetch() {  # $1: sources list, rest: packages
    local list="$1"; shift
    local opts=(-o "Dir::Etc::sourcelist=$list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$apt/lists/$(basename "$list")"
                -o "Dir::Cache=$apt/cache" -o APT::Get::List-Cleanup=0)
    mkdir -p "$apt/lists/$(basename "$list")/partial"
    apt-get "${opts[@]}" update >&2
    (cd "$apt/debs" && apt-get "${opts[@]}" download "$@" >&2)
  }
  fetch "$apt/trixie.list" nvidia-cuda-toolkit nvidia-cuda-dev libnvvm4 libcudart12 libcu++-dev libthrust-dev libcub-dev
  fetch "$apt/bookworm.list" libtorch-dev libgflags-dev libgoogle-glog-dev
  for deb in "$apt/debs"/*.deb; do dpkg-deb -x "$deb" "$root"; done
  rm -rf "$apt"
  # Debian's nvcc.profile points at /usr; this one points at the unpacked tree.
  rm -f "$bin/nvcc.profile"
  cat > "$bin/nvcc.profile" <<EOF
NVVMIR_LIBRARY_DIR = \$(_HERE_)/../libdevice
PATH += \$(_HERE_):$root/usr/bin:
INCLUDES += "-I$root/usr/include" \$(_SPACE_)
LIBRARIES =+ \$(_SPACE_) -L$root/usr/lib/x86_64-linux-gnu/stubs -L$root/usr/lib/x86_64-linux-gnu
EOF
  # Debian's libtorch-dev leaves out a generated CUDA header that c10/cuda includes; an empty one is enough to compile.
  mkdir -p "$root/usr/include/c10/cuda/impl"
  [ -f "$root/usr/include/c10/cuda/impl/cuda_cmake_macros.h" ] || echo '#pragma once' > "$root/usr/include/c10/cuda/impl/cuda_cmake_macros.h"
fi
"$bin/nvcc" --version | tail -1 >&2
echo "export POSTTRAIN_DEV_CUDA=$root PATH=$bin:$root/usr/bin:\$PATH"
