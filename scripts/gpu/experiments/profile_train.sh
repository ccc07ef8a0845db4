#!/usr/bin/env bash
# Experiment (issue 14: where the fast step's time goes): the GPU kernels of PostTrain's fast training step (bf16
# parameters, CUDA graph) beside those of transformers + torch.compile + fused AdamW, same model, batch and call. Both
# are traced by libtorch's Kineto profiler (PostTrain through native/profiler, which run.sh builds on first use; PyTorch
# through torch.profiler) for 3 steps after the measured ones, and summed by kernel name by the same script
# (benchmarks/hf/kernel_summary.py). The device tool brings back only a few files per call: one log and one TSV per
# side and model. Usage: OUT=/tmp/prof PROFILE_MODELS="bench-moe bench-moe-large" profile_train.sh
set -uo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-/tmp/prof}; mkdir -p "$OUT"
export POSTTRAIN_PROFILER=1   # run.sh builds native/profiler on first use
for model in ${PROFILE_MODELS:-bench-moe}; do
  if [ $model = bench-moe ]; then bt="--batch 8 --seq 1024"; else bt="--batch 4 --seq 2048"; fi
  scripts/gpu/run.sh bench-train --model $model $bt --device cuda --fast-path on --params bf16 --profile /tmp/pt-$model.json \
    2>&1 | grep '^{\|profile\|rror' | cut -c1-400 | tee -a "$OUT/profile.log"
  echo "== PostTrain fast path (bf16 parameters), $model"
  python3 benchmarks/hf/kernel_summary.py /tmp/pt-$model.json 3 "$OUT/posttrain-$model-kernels.tsv" --top ${TOP:-45}
  python3 benchmarks/hf/hf_bench.py train --config benchmarks/hf/$model.json --experts grouped_mm --compile $bt \
    --profile /tmp/hf-$model.json 2>&1 | grep '^{\|rror' | tee -a "$OUT/profile.log"
  echo "== transformers + torch.compile + fused AdamW, $model"
  python3 benchmarks/hf/kernel_summary.py /tmp/hf-$model.json 3 "$OUT/hf-compiled-$model-kernels.tsv" --top ${TOP:-45}
done
