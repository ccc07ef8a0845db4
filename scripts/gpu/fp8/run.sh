#!/usr/bin/env bash
# Runs the FP8 self-check and benchmark on the GPU machine (PyTorch 2.11 + CUDA, no .NET needed).
# From the repository root there, after scripts/gpu/fp8/bundle.sh was run on the build machine:
#   scripts/gpu/fp8/run.sh            # check, then bench
#   scripts/gpu/fp8/run.sh check      # only the self-check (exit code 1 on any failure)
#   scripts/gpu/fp8/run.sh bench --tokens 8192 --iters 20
# Output also goes to $OUT/fp8-<mode>.txt when $OUT is set (the device tool returns that folder).
set -euo pipefail
cd "$(dirname "$0")/../../.."
bundle=.dist/fp8bench.tar.xz
[ -f "$bundle" ] || { echo "missing $bundle: run scripts/gpu/fp8/bundle.sh on the build machine and carry it" >&2; exit 2; }
work=$(mktemp -d)
tar -C "$work" -xJf "$bundle"
torchlib=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$torchlib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
out=${OUT:-}
rc=0
run() {
  local name=$1; shift
  if [ -n "$out" ]; then "$work/fp8bench/fp8bench" "$@" 2>&1 | tee "$out/fp8-$name.txt"; return "${PIPESTATUS[0]}"
  else "$work/fp8bench/fp8bench" "$@"; fi
}
if [ $# -eq 0 ]; then
  run check check || rc=$?
  run bench bench || rc=$?
else
  run "$1" "$@" || rc=$?
fi
exit $rc
