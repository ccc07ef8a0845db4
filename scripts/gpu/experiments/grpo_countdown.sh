#!/usr/bin/env bash
# Experiment: Countdown. SFT of tiny-moe on the shipped train puzzles (completion = the `answer` column's expression,
# 800 steps x 32), then recipes/grpo-countdown.yaml at lr 3e-4 with 16 prompts per step; held-out success on all 200
# test puzzles (greedy and 4 samples) every 30 steps.
set -uo pipefail
cd "$(dirname "$0")/../../.."
timeout 150 scripts/gpu/run.sh run recipes/sft-quickstart.yaml model.path=tiny-moe optimizer.lr=3e-3 scheduler.warmup_steps=15 scheduler.min_lr=3e-4 output_dir=/tmp/c-sft model.device=cuda max_steps=800 data.batch_size=32 \
  data.path=datasets/countdown/train.parquet data.eval_path=datasets/countdown/test.parquet 'data.columns={completion: answer}' \
  data.eval_every_n_steps=400 checkpoint.every_n_steps=0 logging.progress=plain logging.plain_interval_seconds=60 > /tmp/c-sft.log 2>&1
grep -h "eval loss" /tmp/c-sft.log
timeout ${GRPO_TIMEOUT:-330} scripts/gpu/run.sh run recipes/grpo-countdown.yaml output_dir=/tmp/c-grpo model.path=/tmp/c-sft/final model.device=cuda \
  max_steps=150 optimizer.lr=3e-4 grpo.prompts_per_step=16 eval.rows=200 eval.samples=4 eval.every_n_steps=30 \
  checkpoint.every_n_steps=0 logging.progress=plain logging.plain_interval_seconds=60 > /tmp/c-grpo.log 2>&1
grep -h "held-out\|error" /tmp/c-grpo.log
