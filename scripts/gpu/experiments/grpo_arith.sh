#!/usr/bin/env bash
# Experiment: GRPO on arithmetic from a stronger SFT model (800 steps of batch 32 on the shipped train split), four
# variants at once: the shipped recipe, + the arith_steps dense reward, a higher lr, math only. Held-out greedy and
# sampled (4 per prompt) accuracy on all 200 test problems every 30 steps. Output: /tmp/x-*/metrics.jsonl, logs.
set -uo pipefail
cd "$(dirname "$0")/../../.."
timeout ${SFT_TIMEOUT:-210} scripts/gpu/run.sh run recipes/sft-quickstart.yaml model.path=tiny-moe optimizer.lr=3e-3 scheduler.warmup_steps=15 scheduler.min_lr=3e-4 output_dir=/tmp/x-sft model.device=cuda max_steps=${SFT_STEPS:-800} \
  data.batch_size=32 data.eval_every_n_steps=200 checkpoint.every_n_steps=0 logging.progress=plain logging.plain_interval_seconds=60 > /tmp/x-sft.log 2>&1
grep -h "eval loss" /tmp/x-sft.log
common="model.path=/tmp/x-sft/final model.device=cuda max_steps=${GRPO_STEPS:-150} eval.rows=200 eval.samples=4 eval.every_n_steps=30 \
  grpo.prompts_per_step=16 checkpoint.every_n_steps=0 logging.progress=plain logging.plain_interval_seconds=60"
steps_reward='rewards=[{name: math, weight: 1.0}, {name: arith_steps, weight: 0.5}]'
run() { local name=$1; shift; timeout ${GRPO_TIMEOUT:-330} scripts/gpu/run.sh run recipes/grpo-arith.yaml output_dir=/tmp/x-$name $common "$@" > /tmp/x-$name.log 2>&1; }
run shipped &
run steps "$steps_reward" &
run steps-lr3e-4 "$steps_reward" optimizer.lr=3e-4 &
run math-lr3e-4 'rewards=[{name: math, weight: 1.0}]' optimizer.lr=3e-4 &
wait
grep -H "held-out" /tmp/x-*.log
