#!/usr/bin/env bash
# Makes models/tiny-moe-arith-base: the built-in tiny-moe (3.75 M parameters) pre-trained as a plain language model
# (no chat template, loss on every token) on 20,000 arithmetic word problems with solutions
# (scripts/gpu/make_arith_pretrain.py; no test-split prompt among them). It plays the "base model" that the CPU
# pipeline quickstart post-trains: the CPU can't pre-train in minutes, just as nobody pre-trains a base model in a
# post-training tutorial. Run on the GPU machine (about 2 minutes on an H100):
#   scripts/gpu/pretrain_tiny_base.sh /tmp/tiny-base      # then copy /tmp/tiny-base/final into models/tiny-moe-arith-base
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-/tmp/tiny-base}
python3 scripts/gpu/make_arith_pretrain.py /tmp/arith-pretrain.jsonl
scripts/gpu/run.sh run recipes/sft-quickstart.yaml output_dir=$out model.path=tiny-moe model.device=cuda seed=4321 \
  max_steps=${STEPS:-1000} data.path=/tmp/arith-pretrain.jsonl data.chat_template=plain data.train_on=all data.batch_size=32 \
  data.eval_path=datasets/arithmetic/test.parquet data.eval_every_n_steps=250 scheduler.warmup_steps=50 \
  checkpoint.every_n_steps=0 logging.progress=plain logging.plain_interval_seconds=30
