#!/usr/bin/env bash
# Runs the published PostTrain bundle (scripts/gpu/publish.sh) on a machine with PyTorch installed: TorchSharp uses
# PyTorch's own libtorch (CUDA included) through LD_LIBRARY_PATH. Usage: scripts/gpu/run.sh <posttrain args...>
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
dest=/tmp/posttrain-linux-x64
if [ ! -x "$dest/posttrain" ] || [ "$here/.dist/posttrain-linux-x64.tar.xz" -nt "$dest/posttrain" ]; then
  rm -rf "$dest" && tar -C /tmp -xJf "$here/.dist/posttrain-linux-x64.tar.xz" && touch "$dest/posttrain"
fi
torchlib="$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torchlib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# CUDA-graph decoding: build native/cudagraph against this torch once (a failure only means eager decoding)
cg=/tmp/posttrain-cudagraph/libposttrain_cudagraph.so
if [ -z "${POSTTRAIN_CUDAGRAPH_LIB:-}" ] && [ "${POSTTRAIN_NO_CUDAGRAPH:-0}" != 1 ]; then
  if [ ! -f "$cg" ] || [ "$here/native/cudagraph/posttrain_cudagraph.cpp" -nt "$cg" ]; then
    "$here/scripts/gpu/build-cudagraph.sh" "$cg" >&2 || echo "run.sh: CUDA-graph library not built; decoding stays eager" >&2
  fi
  [ -f "$cg" ] && export POSTTRAIN_CUDAGRAPH_LIB="$cg"
fi
# Native kernels (fused RMSNorm / SwiGLU, FP8 quantisation, grouped FP8 GEMMs): built with nvcc and Triton at first
# use and again when native/kernels changes; a failure only means the plain ops. POSTTRAIN_FUSED_KERNELS=0 and
# POSTTRAIN_FP8_KERNELS=0 switch each group off at run time; POSTTRAIN_KERNELS_BUILD=0 skips the build.
fk=/tmp/posttrain-kernels/libposttrain_kernels.so
if [ -z "${POSTTRAIN_KERNELS_LIB:-}" ] && [ "${POSTTRAIN_KERNELS_BUILD:-1}" != 0 ]; then
  if [ ! -f "$fk" ] || [ -n "$(find "$here/native/kernels" -newer "$fk" -type f | head -1)" ]; then
    "$here/scripts/gpu/build-kernels.sh" "$fk" >&2 || echo "run.sh: native kernels not built; the plain ops run" >&2
  fi
  [ -f "$fk" ] && export POSTTRAIN_KERNELS_LIB="$fk"
fi
# Kernel profiler (bench-train --profile, Generation --kernel-trace): built on request only (POSTTRAIN_PROFILER=1), as it
# compiles against libtorch's profiler headers; a failure only means nothing is traced.
pf=/tmp/posttrain-profiler/libposttrain_profiler.so
if [ "${POSTTRAIN_PROFILER:-0}" = 1 ] && [ -z "${POSTTRAIN_PROFILER_LIB:-}" ]; then
  if [ ! -f "$pf" ] || [ "$here/native/profiler/posttrain_profiler.cpp" -nt "$pf" ]; then
    "$here/scripts/gpu/build-profiler.sh" "$pf" >&2 || echo "run.sh: kernel profiler not built; nothing is traced" >&2
  fi
  [ -f "$pf" ] && export POSTTRAIN_PROFILER_LIB="$pf"
fi
# a 64 MB gen0 budget: 30x fewer collections, so TorchSharp 0.107's implicit-Scalar race (README) opens 30x less often
export DOTNET_gcServer=0 DOTNET_TieredPGO=1 DOTNET_GCgen0size=${DOTNET_GCgen0size:-0x4000000}
tool="${POSTTRAIN_TOOL:-posttrain}"   # or fp8bench, PostTrain.Benchmarks.Generation
exec "$dest/$tool" "$@"
