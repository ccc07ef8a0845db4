#!/usr/bin/env bash
# Experiment (issue "A training engine that beats transformers + torch.compile"): the fast path's memory levers in one
# call, bf16 parameters like the compiled baseline: `benchmarks/run-gpu.sh train` with the rows
#   fast-bf16   the fast path as it ships (bench-moe with the 20-step graph-vs-eager self-check)
#   re-off      the same with RecomputedExperts off (the experts' gathered input and SwiGLU output saved: that lever's A/B)
#   selective   selective recompute on the fast path (bench-moe; recipes refuse it there until measured)
#   hf-compile  transformers + torch.compile + fused AdamW
# and its table. After them, when SANDBOX=1, the warm sandbox throughput table on this machine's then idle cores (issue
# "GRPO that learns to write code"). Output: $OUT/bench-train.jsonl, $OUT/train-table.md, $OUT/train-memory.log (all).
set -uo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-/tmp/train-memory}; mkdir -p "$OUT"
exec > >(tee -a "$OUT/train-memory.log") 2>&1
export PYTHONUNBUFFERED=1 OUT
TRAIN_ARMS="fast-bf16 re-off selective hf-compile" benchmarks/run-gpu.sh train
if [ "${SANDBOX:-0}" = 1 ]; then
  POSTTRAIN_NO_CUDAGRAPH=1 POSTTRAIN_TOOL=PostTrain.Benchmarks.Sandbox timeout ${BENCH_TIMEOUT:-200} scripts/gpu/run.sh \
    ${PROGRAMS:-1000} ${ROUNDS:-2}
fi
