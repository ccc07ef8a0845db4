#!/usr/bin/env bash
# Experiment: a Countdown base model (tiny-moe pre-trained on 200k Countdown puzzles with worked solutions,
# scripts/gpu/pretrain_tiny_base.sh with TASK=countdown), saved in bf16 as it ships (models/tiny-moe-countdown-base),
# then what recipes/pipeline-countdown.yaml does from it: SFT on the 2,000 shipped puzzles (60 steps), then
# recipes/grpo-countdown.yaml with held-out success on all 200 test puzzles (greedy and 4 samples) every 30 steps.
# Leaves the bf16 base in /tmp/cd${TAG}-base-bf16. Another puzzle shape: CD_SPLIT=<dir with train/test.parquet>
# (datasets/tools/PostTrain.DatasetGen countdown ...) and CD_ARGS (make_countdown_pretrain.py's shape options).
set -uo pipefail
cd "$(dirname "$0")/../../.."
t=${TAG:-}; split=${CD_SPLIT:-datasets/countdown}
dest=/tmp/cd$t-base-bf16
TASK=countdown STEPS=${BASE_STEPS:-2000} timeout ${BASE_TIMEOUT:-240} scripts/gpu/pretrain_tiny_base.sh /tmp/cd$t-base > /tmp/cd$t-base.log 2>&1
grep -h "eval loss" /tmp/cd$t-base.log | tail -5
python3 scripts/gpu/save_bf16.py /tmp/cd$t-base/final "$dest"
timeout ${SFT_TIMEOUT:-120} scripts/gpu/run.sh run recipes/sft-quickstart.yaml output_dir=/tmp/cd$t-sft model.path=$dest model.device=cuda \
  data.path=$split/train.parquet data.eval_path=$split/test.parquet \
  checkpoint.every_n_steps=0 logging.progress=plain logging.plain_interval_seconds=60 > /tmp/cd$t-sft.log 2>&1
grep -h "eval loss" /tmp/cd$t-sft.log | tail -3
timeout ${GRPO_TIMEOUT:-330} scripts/gpu/run.sh run recipes/grpo-countdown.yaml output_dir=/tmp/cd$t-grpo model.path=/tmp/cd$t-sft/final \
  model.device=cuda max_steps=${GRPO_STEPS:-150} data.path=$split/train.parquet eval.path=$split/test.parquet \
  checkpoint.every_n_steps=0 logging.progress=plain logging.plain_interval_seconds=60 ${GRPO_ARGS:-} > /tmp/cd$t-grpo.log 2>&1
grep -h "held-out\|rror" /tmp/cd$t-grpo.log | head -20
