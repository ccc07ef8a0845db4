#!/usr/bin/env bash
# Experiment (issue "A training engine that beats transformers + torch.compile"): the fast path's memory levers in one
# call, bf16 parameters like the compiled baseline. Per model: the fast path as it ships (bench-moe with the 20-step
# graph-vs-eager self-check), the same with RecomputedExperts off (the experts' gathered input and SwiGLU output saved:
# the A/B of that lever), selective recompute on the fast path (bench-moe; recipes refuse it there until measured), and
# transformers + torch.compile + fused AdamW; then benchmarks/hf/train_table.py's table. After them, when SANDBOX=1,
# the warm sandbox throughput table on this machine's then idle cores (issue "GRPO that learns to write code"). Output: $OUT/train-memory.jsonl, $OUT/train-memory.md, $OUT/train-memory.log (everything).
set -uo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-/tmp/train-memory}; mkdir -p "$OUT"
log=$OUT/train-memory.jsonl; : > "$log"
exec > >(tee -a "$OUT/train-memory.log") 2>&1
export PYTHONUNBUFFERED=1
pt() { scripts/gpu/run.sh "$@"; }
python3 benchmarks/hf/matmul_rate.py | tee -a "$log"
for model in ${TRAIN_MODELS:-bench-moe bench-moe-large}; do
  if [ $model = bench-moe ]; then bt="--batch 8 --seq 1024"; check="--self-check ${SELF_CHECK_STEPS:-20}"; else bt="--batch 4 --seq 2048"; check=""; fi
  pt bench-train --model $model $bt --device cuda --fast-path on --params bf16 $check | tee -a "$log"
  POSTTRAIN_RECOMPUTED_EXPERTS=0 pt bench-train --model $model $bt --device cuda --fast-path on --params bf16 | tee -a "$log"
  [ $model = bench-moe ] && pt bench-train --model $model $bt --device cuda --fast-path on --params bf16 --recompute selective | tee -a "$log"
  python3 benchmarks/hf/hf_bench.py train --config benchmarks/hf/$model.json --experts grouped_mm --compile $bt | grep '^{\|rror' | tee -a "$log"
done
python3 benchmarks/hf/train_table.py "$log" | tee "$OUT/train-memory.md"
if [ "${SANDBOX:-0}" = 1 ]; then
  POSTTRAIN_NO_CUDAGRAPH=1 POSTTRAIN_TOOL=PostTrain.Benchmarks.Sandbox timeout ${BENCH_TIMEOUT:-200} pt ${PROGRAMS:-1000} ${ROUNDS:-2}
fi
