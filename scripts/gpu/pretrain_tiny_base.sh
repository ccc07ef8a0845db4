#!/usr/bin/env bash
# Makes models/tiny-moe-arith-base: the built-in tiny-moe (3.75 M parameters) pre-trained as a plain language model
# (no chat template, loss on every token) on 20,000 arithmetic word problems with solutions
# (scripts/gpu/make_arith_pretrain.py; no test-split prompt among them). TASK=countdown makes
# models/tiny-moe-countdown-base instead (saved in bf16 by scripts/gpu/experiments/countdown_base.sh): 45,000
# distinct Countdown puzzles with worked solutions (scripts/gpu/make_countdown_pretrain.py), 4,000 steps. TASK=code makes
# the code base for recipes/pipeline-code.yaml (to be published as models/tiny-moe-code-base): 60,000 code tasks of the
# training families and constants of datasets/code (PostTrain.DatasetGen code-pretrain: prompt + fenced reference
# function, JavaScript and C# alternating, no held-out function; made by the generator here, or beforehand and passed
# as CODE_DATA=file.jsonl), 3,000 steps of 32 x 1,024-token rows (98 M tokens, ~4.7 epochs). It plays the "base model" that the CPU
# pipeline quickstart post-trains: the CPU can't pre-train in minutes, just as nobody pre-trains a base model in a
# post-training tutorial. Run on the GPU machine (about 2 minutes on an H100):
#   scripts/gpu/pretrain_tiny_base.sh /tmp/tiny-base      # then copy /tmp/tiny-base/final into models/tiny-moe-arith-base
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-/tmp/tiny-base}
case "${TASK:-arith}" in
  arith) python3 scripts/gpu/make_arith_pretrain.py /tmp/arith-pretrain.jsonl; data=/tmp/arith-pretrain.jsonl
         eval=datasets/arithmetic/test.parquet; steps=${STEPS:-1000} ;;
  countdown) eval=${CD_SPLIT:-datasets/countdown}/test.parquet   # CD_SPLIT, CD_ARGS: another puzzle shape (experiments)
         python3 scripts/gpu/make_countdown_pretrain.py /tmp/countdown-pretrain$$.jsonl --test $eval ${CD_ARGS:-}
         data=/tmp/countdown-pretrain$$.jsonl; steps=${STEPS:-4000} ;;
  code) # eval on the rl split (trained families, constants no training text shows): the held-out test split is two
         # thirds test-only families, whose loss rises as the model fits the trained ones (attempts 3-4 read that rise
         # as over-fitting), while the rl rows' loss falls only if the model reads the constants off the descriptions
         eval=datasets/code/rl.parquet; steps=${STEPS:-3000}; seq=1024
         # CODE_DATA: the text made beforehand (the GPU machine has no dotnet to run the generator)
         data=${CODE_DATA:-/tmp/code-pretrain$$.jsonl}
         [ -n "${CODE_DATA:-}" ] || dotnet run --project datasets/tools/PostTrain.DatasetGen -c Release -- code-pretrain $data ${CODE_COUNT:-60000} ;;
  *) echo "TASK must be arith, countdown or code" >&2; exit 2 ;;
esac
# MODEL / LR: another built-in architecture and peak learning rate (e.g. MODEL=bench-moe LR=6e-4 for a 274 M base when
# the tiny one cannot learn a task); the minimum learning rate is a tenth of the peak. BASE_ARGS: more key=value
# overrides (e.g. model.dtype=bfloat16: an fp32 MoE step is not captured, see FastTrainStep.GraphBlocker).
lr=${LR:-3e-3}
scripts/gpu/run.sh run recipes/sft-quickstart.yaml output_dir=$out model.path=${MODEL:-tiny-moe} model.device=cuda seed=4321 \
  max_steps=$steps data.path=$data data.chat_template=plain data.train_on=all data.batch_size=32 data.max_seq_len=${seq:-512} \
  data.eval_path=$eval data.eval_every_n_steps=$((steps / 4)) optimizer.lr=$lr scheduler.warmup_steps=50 scheduler.min_lr=$(python3 -c "print($lr / 10)") \
  checkpoint.every_n_steps=0 logging.progress=plain logging.plain_interval_seconds=30 ${BASE_ARGS:-}
