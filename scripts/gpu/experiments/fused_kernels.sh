#!/usr/bin/env bash
# Experiment: the fused RMSNorm / SwiGLU kernels (native/kernels, built by scripts/gpu/run.sh at first use) against
# the plain ops, same call: bench-train on bench-moe and bench-moe-large, fast path with bf16 parameters and the eager
# step, each with POSTTRAIN_FUSED_KERNELS=0 and with the kernels; the first run prints the kernels' self-check line
# ("fused kernels (cuda:0): on ..." or "off: why"); the fast path's own --self-check compares graph and eager steps.
# Then greedy decode tokens/s with and without (the generation benchmark). Usage: OUT=/tmp/out fused_kernels.sh
set -uo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-/tmp/fused}
mkdir -p "$OUT"
for model in ${MODELS:-bench-moe bench-moe-large}; do
  for fk in 0 1; do
    for args in "--fast-path on --params bf16 --self-check ${CHECK_STEPS:-3}" "--fast-path off"; do
      echo "== $model, POSTTRAIN_FUSED_KERNELS=$fk, $args" | tee -a "$OUT/fused.log"
      POSTTRAIN_FUSED_KERNELS=$fk timeout ${RUN_TIMEOUT:-150} scripts/gpu/run.sh bench-train --model $model --device cuda $args \
        2>&1 | grep -E "fused kernels|tokens/s|self-check|error|peak" | tee -a "$OUT/fused.log"
    done
  done
done
for fk in 0 1; do
  echo "== generation, POSTTRAIN_FUSED_KERNELS=$fk" | tee -a "$OUT/fused.log"
  POSTTRAIN_FUSED_KERNELS=$fk POSTTRAIN_TOOL=PostTrain.Benchmarks.Generation timeout ${RUN_TIMEOUT:-150} scripts/gpu/run.sh \
    2>&1 | grep -E "fused kernels|^\| |error" | tee -a "$OUT/fused.log"
done
