#!/usr/bin/env bash
# Experiment (issue: faster rollouts): the fused decode kernels (native/kernels/posttrain_decode.cu: rotary, masked
# softmax, router selection, routing-weighted SiLU, MLA key side, sampling) against the plain ops in the CUDA-graph
# decode step, same process; bench-moe sampled (temperature 1, as transformers below) and greedy (64 prompts x 32 random
# tokens, 256 new) and the tiny arithmetic model with its own prompts (TRACE=1 adds a kernel trace of the step); then
# transformers generate on bench-moe (grouped_mm experts) in the same call as the baseline. The first PostTrain run
# prints the kernels' self-check ("decode kernels (cuda:0): on ..." or "off: why"). Usage: OUT=/tmp/out decode_kernels.sh
set -uo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-/tmp/decode}
mkdir -p "$OUT"
log="$OUT/decode-kernels.log"
for mode in "" --greedy; do
  echo "== bench-moe ${mode:-sampled, temperature 1}" | tee -a "$log"
  POSTTRAIN_TOOL=PostTrain.Benchmarks.Generation timeout ${RUN_TIMEOUT:-240} scripts/gpu/run.sh --decode-kernels $mode --no-profile \
    2>&1 | tee "$OUT/bench-moe${mode}.txt" | grep -E "kernels|^\| |greedy|sampled|error|Exception" | tee -a "$log"
done
# the same greedy step with the absorbed attention's two-step products (POSTTRAIN_DECODE_FOLD=0) instead of the folded
# weights: the fold's share of the step, same call
echo "== bench-moe --greedy, POSTTRAIN_DECODE_FOLD=0 (two-step W_k / W_v products)" | tee -a "$log"
POSTTRAIN_DECODE_FOLD=0 POSTTRAIN_TOOL=PostTrain.Benchmarks.Generation timeout ${RUN_TIMEOUT:-240} scripts/gpu/run.sh --decode-kernels --greedy --no-profile \
  2>&1 | tee "$OUT/bench-moe-nofold.txt" | grep -E "kernels|^\| |greedy|sampled|error|Exception" | tee -a "$log"
if [ -d "${TINY:-models/tiny-moe-arith-base}" ]; then
  echo "== tiny-moe-arith-base" | tee -a "$log"
  POSTTRAIN_TOOL=PostTrain.Benchmarks.Generation timeout ${RUN_TIMEOUT:-240} scripts/gpu/run.sh --decode-kernels --greedy --no-profile \
    --model "${TINY:-models/tiny-moe-arith-base}" --prompt-source arith 2>&1 | tee "$OUT/tiny.txt" | grep -E "kernels|^\| |greedy|sampled|error|Exception" | tee -a "$log"
fi
echo "== transformers generate, bench-moe, grouped_mm experts (baseline, same call)" | tee -a "$log"
timeout ${RUN_TIMEOUT:-240} python3 benchmarks/hf/hf_bench.py generate --experts grouped_mm 2>&1 | tail -5 | tee -a "$log"
echo "== transformers generate + static cache + torch.compile(reduce-overhead), bench-moe, grouped_mm experts (same call)" | tee -a "$log"
timeout ${RUN_TIMEOUT:-240} python3 benchmarks/hf/hf_bench.py generate --experts grouped_mm --compile 2>&1 | tail -5 | tee -a "$log"
# TRACE=1: the captured decode step's kernels (bench-moe, greedy) traced by libtorch's Kineto profiler and summed per
# decode step by name (benchmarks/hf/kernel_summary.py): where the step's time goes, for the issue's 1.0 ms target.
if [ "${TRACE:-0}" = 1 ]; then
  out=$(POSTTRAIN_PROFILER=1 POSTTRAIN_TOOL=PostTrain.Benchmarks.Generation timeout ${RUN_TIMEOUT:-240} scripts/gpu/run.sh --greedy \
    --no-profile --kernel-trace /tmp/decode-trace.json 2>&1 | tee "$OUT/trace-run.txt" | grep "kernel trace")
  echo "$out" | tee -a "$log"
  steps=$(echo "$out" | sed -n 's/^kernel trace: \([0-9]*\) decode steps.*/\1/p')
  [ -n "$steps" ] && python3 benchmarks/hf/kernel_summary.py /tmp/decode-trace.json "$steps" "$OUT/decode-kernels.tsv" --top 40 | tee -a "$log"
fi
