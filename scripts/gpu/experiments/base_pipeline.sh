#!/usr/bin/env bash
# Experiment: pre-train the tiny base (scripts/gpu/pretrain_tiny_base.sh), then the CPU pipeline's SFT and GRPO sizes
# on the GPU (same recipes and step counts as on the CPU) to see the held-out accuracy each stage reaches.
set -uo pipefail
cd "$(dirname "$0")/../../.."
STEPS=${BASE_STEPS:-1000} scripts/gpu/pretrain_tiny_base.sh /tmp/b-base > /tmp/b-base.log 2>&1
grep "eval loss" /tmp/b-base.log
for s in 60 120; do
  scripts/gpu/run.sh run recipes/sft-quickstart.yaml output_dir=/tmp/b-sft$s model.path=/tmp/b-base/final model.device=cuda max_steps=$s \
    optimizer.lr=1e-3 scheduler.warmup_steps=10 scheduler.min_lr=1e-4 checkpoint.every_n_steps=0 logging.progress=plain > /tmp/b-sft$s.log 2>&1 &
done
wait
grep -H "eval loss" /tmp/b-sft*.log | tail -4
for lr in 3e-4 1e-3; do for s in 60 120; do
  timeout 240 scripts/gpu/run.sh run recipes/grpo-arith.yaml output_dir=/tmp/b-grpo-$s-$lr model.path=/tmp/b-sft$s/final model.device=cuda \
    max_steps=40 optimizer.lr=$lr eval.rows=200 eval.every_n_steps=10 grpo.prompts_per_step=8 checkpoint.every_n_steps=0 \
    logging.progress=plain > /tmp/b-grpo-$s-$lr.log 2>&1 &
done; done
wait
grep -H "held-out" /tmp/b-grpo-*.log
