#!/usr/bin/env bash
# Experiment: does SFT on 20k arithmetic rows (same generator ranges as datasets/arithmetic, test prompts excluded)
# generalise better than on the shipped 2k rows, and does GRPO then teach? Runs on the GPU machine.
set -uo pipefail
cd "$(dirname "$0")/../../.."
python3 scripts/gpu/make_arith_pretrain.py /tmp/arith20k.jsonl   # the same 20k problems the tiny base is pre-trained on
for s in 150 600; do
  timeout 200 scripts/gpu/run.sh run recipes/sft-quickstart.yaml model.path=tiny-moe optimizer.lr=3e-3 scheduler.warmup_steps=15 scheduler.min_lr=3e-4 output_dir=/tmp/a-sft$s model.device=cuda max_steps=$s data.path=/tmp/arith20k.jsonl \
    checkpoint.every_n_steps=0 logging.progress=plain logging.plain_interval_seconds=60 > /tmp/a-sft$s.log 2>&1 &
done
wait
grep -h "eval loss" /tmp/a-sft*.log
timeout 120 scripts/gpu/run.sh eval --model sft150=/tmp/a-sft150/final --model sft600=/tmp/a-sft600/final --task arithmetic \
  --samples 8 --temperature 1.0 --max-new-tokens 96 --device cuda --output /tmp/a-eval > /tmp/a-eval.log 2>&1 &
for base in sft150 sft600; do
  timeout ${GRPO_TIMEOUT:-200} scripts/gpu/run.sh run recipes/grpo-arith.yaml output_dir=/tmp/a-$base-grpo model.path=/tmp/a-$base/final \
    model.device=cuda max_steps=100 optimizer.lr=2e-4 data.path=/tmp/arith20k.jsonl eval.rows=200 eval.every_n_steps=25 \
    grpo.prompts_per_step=16 checkpoint.every_n_steps=0 logging.progress=plain logging.plain_interval_seconds=60 > /tmp/a-$base-grpo.log 2>&1 &
done
wait
grep -h "held-out" /tmp/a-*-grpo.log
