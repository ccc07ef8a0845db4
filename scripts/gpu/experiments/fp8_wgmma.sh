#!/usr/bin/env bash
# Experiment (issue "DeepSeek-V3's FP8 recipe at speed"): the TMA + wgmma grouped FP8 GEMMs (native/kernels/sm90a), in
# two device calls of under 600 s each:
#   kernels  benchmarks/fp8-kernels/bench_wgmma.py (under `timeout 300`: a barrier mistake would hang the kernel): builds
#            them for sm_90a, diagnoses one tile with exact small integers, checks both kernels at both bench models'
#            expert shapes and a dense 8192^3 against dequantised fp32 references and the Triton kernels, and prints the
#            GEMM table beside BF16 torch._grouped_mm (one-CTA-per-tile and persistent kernels, fp32 and bf16 Wgrad).
#            Only if every row is right: PostTrain's FP8 self-check and GEMM tables with the Triton GEMMs and with
#            POSTTRAIN_FP8_WGMMA=0 (Triton), =1 and =persistent (auto, by width, is the default on sm_90) (`run-gpu.sh fp8`, parts check and bench).
#   train    bench-train on the fast path, bf16 / fp8 (Triton) / fp8 (wgmma, each of FP8_WGMMA_MODES: default
#            "persistent 1"), for bench-moe and bench-moe-large, and bench-moe-large FP8_DEEP_LAYERS (12) deep with bf16
#            parameters and the first of FP8_WGMMA_MODES (`run-gpu.sh fp8`, parts train and deep). Put the faster mode
#            of the kernels call first.
#   profile  the FP8 fast step of bench-moe-large (bf16 parameters) traced by libtorch's Kineto profiler, summed by
#            kernel into $OUT/fp8-large-kernels.tsv (benchmarks/hf/kernel_summary.py).
# Output: $OUT/fp8-wgmma.log (everything), $OUT/bench-fp8.jsonl. Usage: OUT=$OUT scripts/gpu/experiments/fp8_wgmma.sh kernels
# (the bundle carried; run.sh builds the native library, the wgmma one included, at first use).
set -uo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-/tmp/fp8-wgmma}; mkdir -p "$OUT"
exec > >(tee -a "$OUT/fp8-wgmma.log") 2>&1
export PYTHONUNBUFFERED=1 OUT
for phase in "${@:-kernels}"; do
  case "$phase" in
    kernels)
      timeout 300 python3 benchmarks/fp8-kernels/bench_wgmma.py; rc=$?
      if [ $rc != 0 ]; then echo "fp8_wgmma: bench_wgmma.py ended with $rc; PostTrain is not run with the wgmma kernels"; exit $rc; fi
      FP8_PARTS=check,bench FP8_WGMMA_MODES="1 persistent" benchmarks/run-gpu.sh fp8 ;;
    train) FP8_PARTS=train,deep FP8_FAST_MODES=on FP8_WGMMA_MODES="${FP8_WGMMA_MODES:-persistent 1}" benchmarks/run-gpu.sh fp8 ;;
    profile)   # where the FP8 step's time goes, by kernel (the grouped GEMMs as shipped: wgmma on sm_90)
      POSTTRAIN_PROFILER=1 scripts/gpu/run.sh bench-train --model bench-moe-large --batch 4 --seq 2048 --device cuda \
        --fast-path on --params bf16 --dtype fp8 --profile /tmp/pt-fp8-large.json 2>&1 | grep '^{\|profile\|rror\|fp8 kernels' | cut -c1-400
      python3 benchmarks/hf/kernel_summary.py /tmp/pt-fp8-large.json 3 "$OUT/fp8-large-kernels.tsv" --top ${TOP:-45} ;;
    *) echo "usage: fp8_wgmma.sh kernels|train|profile ..." >&2; exit 2 ;;
  esac
done
