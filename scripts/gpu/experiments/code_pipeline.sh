#!/usr/bin/env bash
# Experiment: the code GRPO pipeline on the GPU machine (issue "GRPO that learns to write code"). Phases (arguments,
# in order; none = all):
#   base      pre-trains models/tiny-moe-code-base: scripts/gpu/pretrain_tiny_base.sh TASK=code on the pre-training
#             text made beforehand on a machine with dotnet (CODE_DATA, default .gpu-stage/code-pretrain.jsonl.gz:
#             `dotnet run --project datasets/tools/PostTrain.DatasetGen -c Release -- code-pretrain F 60000`), then
#             saves it in bf16 as it ships (router correction bias fp32) into /tmp/code-base$TAG-bf16 and $OUT/code-base$TAG.tar
#   bench     the sandbox throughput benchmark on this machine's cores (benchmarks/Sandbox, PROGRAMS x 3 cases)
#   pipeline  recipes/pipeline-code.yaml (SFT -> GRPO -> eval of base/SFT/GRPO) from the code base (BASE, default
#             /tmp/code-base$TAG-bf16: outside the repository, which each device call re-syncs) into $RUN; re-running it
#             resumes (finished stages are skipped, GRPO resumes from its last checkpoint); packs the reports and
#             metrics into $OUT/pipeline$TAG-results.tar.xz
#   diag      greedy evaluation of the base (plain template), SFT and GRPO models of $RUN (those that exist) on 200
#             (DIAG_LIMIT) training rows, the held-out rows per held-out kind and 200 rl rows (code-diag/*.yaml), with every completion ($OUT/diag$TAG.tar.xz: report
#             and samples.csv): which step fails to write code, or to carry a family to new constants
# Logs: $OUT/<phase>$TAG.log. Usage: OUT=/tmp/out scripts/gpu/experiments/code_pipeline.sh [base] [bench] [pipeline]
# TAG (default empty) suffixes every /tmp path and log, so two variants (e.g. TAG=-small BASE_CONFIG=...) run side by
# side on one GPU (the tiny models are host-bound); start them after `code_pipeline.sh data`, which makes the shared text.
# Without CODE_DATA (or the staged .gz) the base phase generates the text on the GPU machine with the bundled
# PostTrain.DatasetGen: CODE_COUNT (default 300,000) distinct training-split tasks, so with BASE_STEPS=3000 the base
# sees each row once (attempt 3 over-fitted 60,000 rows). Attempt 4 showed distinct rows are not enough: each function
# still repeats ~20 times, and memorising it stays cheaper than reading the constant off the description. CODE_WIDE=1
# writes the wide-constant text instead, where each function of the widened families appears once to 20 times;
# CODE_DRILLS=SHARE mixes copy drills into it (see pretrain_text). Variants side by side: TAG=-d30 CODE_DRILLS=0.3 LR=1e-3.
# BASE_CONFIG=benchmarks/code-base/small-moe.json pre-trains a ~10 M-parameter variant (21 MB in bf16:
# still shippable) instead of tiny-moe. Plan B if neither can copy the constants: MODEL=bench-moe LR=6e-4
# BASE_STEPS=1000 BASE_TIMEOUT=560 (a 274 M base from random init; pretrain_tiny_base.sh passes MODEL and LR
# through), then the same pipeline phase.
set -uo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-/tmp/code-out}
TAG=${TAG:-}
RUN=${RUN:-/tmp/pipeline-code$TAG}
mkdir -p "$OUT"
ARGS="$*"
want() { [ -z "$ARGS" ] || [[ " $ARGS " == *" $1 "* ]]; }

pretrain_text() {  # the pre-training text's path, made once (atomically) when no text was carried
  local data=${CODE_DATA:-.gpu-stage/code-pretrain.jsonl.gz}
  if [ ! -f "$data" ]; then
    # no text carried: the bundle's generator (PostTrain.DatasetGen) writes it here, CODE_COUNT distinct training-split
    # tasks (300,000 ~ 99 M tokens: one epoch of 3,000 steps of 32 x 1,024, so the base cannot memorise its rows)
    # CODE_WIDE=1: the families' wide constants (each function once to 20 times: reading the constant lowers the loss)
    # CODE_WIDE=999: the same, wide constants and drill numbers at most 999 (1-3 digits equally likely: the rl rows' lengths)
    local wide=""; [ "${CODE_WIDE:-0}" = 1 ] && wide=wide; [ "${CODE_WIDE:-0}" -gt 1 ] 2>/dev/null && wide=wide=$CODE_WIDE
    # CODE_DRILLS=0.3: that share of the rows are copy drills (CopyDrills: repeat a string, numbers, or a function
    # returning a given constant), which teach the copying that reading a constant needs (CPU, 2026-12-05: tiny-moe
    # learns to copy in ~100 steps of drills, but shows none after 400 steps of code text with 5% drills)
    local drills=""; [ -n "${CODE_DRILLS:-}" ] && drills=drills=$CODE_DRILLS
    data=/tmp/code-pretrain-${CODE_COUNT:-300000}${wide:+-$wide}${drills:+-$drills}.jsonl; data=${data//=/}   # no "=" in a path given as key=value
    if [ ! -f "$data" ]; then
      POSTTRAIN_TOOL=PostTrain.DatasetGen scripts/gpu/run.sh code-pretrain "$data.tmp$$" ${CODE_COUNT:-300000} $wide $drills | tail -1 >&2
      mv "$data.tmp$$" "$data"
    fi
  fi
  echo "$data"
}

if want data; then pretrain_text; fi

if want base; then
  data=$(pretrain_text)
  case "$data" in *.gz) zcat "$data" > /tmp/code-pretrain$TAG.jsonl; data=/tmp/code-pretrain$TAG.jsonl ;; esac
  if [ -n "${BASE_CONFIG:-}" ]; then
    # another architecture from its config.json (e.g. benchmarks/code-base/small-moe.json), random init written here
    scripts/gpu/run.sh init-checkpoint --config "$BASE_CONFIG" --output /tmp/code-init$TAG --dtype float32 --device cuda --seed 0 | tail -1
    export MODEL=/tmp/code-init$TAG
  fi
  # a checkpoint every 500 steps, so a run cut by BASE_TIMEOUT still leaves its latest weights (attempt 4 lost both);
  # bf16 compute (fp32 masters), so the fast path captures the step (fp32 MoE experts cannot be captured)
  TASK=code CODE_DATA=$data STEPS=${BASE_STEPS:-2000} BASE_ARGS="checkpoint.every_n_steps=500 model.dtype=bfloat16 ${BASE_ARGS:-}" \
    timeout ${BASE_TIMEOUT:-330} scripts/gpu/pretrain_tiny_base.sh /tmp/code-base$TAG > "$OUT/base$TAG.log" 2>&1
  echo "base$TAG: exit $?"; grep -h "eval loss\|tokens/s" "$OUT/base$TAG.log" | tail -6
  src=/tmp/code-base$TAG/final
  [ -f $src/model.safetensors ] || src=$(ls -d /tmp/code-base$TAG/step-* 2>/dev/null | sort | tail -1)
  echo "base$TAG: weights from $src"
  python3 scripts/gpu/save_bf16.py $src /tmp/code-base$TAG-bf16
  tar -C /tmp -cf "$OUT/code-base$TAG.tar" code-base$TAG-bf16
  cp /tmp/code-base$TAG/metrics.jsonl "$OUT/base$TAG-metrics.jsonl" 2>/dev/null
fi

if want bench; then
  POSTTRAIN_NO_CUDAGRAPH=1 POSTTRAIN_TOOL=PostTrain.Benchmarks.Sandbox timeout ${BENCH_TIMEOUT:-300} scripts/gpu/run.sh \
    ${PROGRAMS:-1000} ${ROUNDS:-2} > "$OUT/bench.log" 2>&1
  echo "bench: exit $?"; cat "$OUT/bench.log"
fi

if want pipeline; then
  # the shipped recipe with its base model (models/tiny-moe-code-base) replaced by $BASE
  BASE=${BASE:-/tmp/code-base$TAG-bf16}
  # GRPO_SET="grpo.temperature: 1.2; optimizer.lr: 1.0e-4" adds those keys to the GRPO stage's set (a variant beside
  # the shipped recipe, with its own TAG). Two pipelines side by side ran fine on the 16-core H100 machine; three at
  # once (each with a sandbox worker per core) made it stop answering (2026-12-05), so keep to two.
  sed "s#models/tiny-moe-code-base#$BASE#g" recipes/pipeline-code.yaml > /tmp/pipeline-code$TAG.yaml
  if [ -n "${GRPO_SET:-}" ]; then
    python3 - /tmp/pipeline-code$TAG.yaml "$GRPO_SET" <<'PY'
import sys
path, extra = sys.argv[1], [e.strip() for e in sys.argv[2].split(";") if e.strip()]
lines = open(path).read().split("\n")
at = next(i for i, l in enumerate(lines) if l.strip() == "model.path: ${sft}/final")
lines[at + 1:at + 1] = ["      " + e for e in extra]
open(path, "w").write("\n".join(lines))
PY
  fi
  timeout ${PIPELINE_TIMEOUT:-3000} scripts/gpu/run.sh run /tmp/pipeline-code$TAG.yaml output_dir=$RUN >> "$OUT/pipeline$TAG.log" 2>&1
  echo "pipeline$TAG: exit $?"
  grep -h "held-out\|McNemar\|pass@\|rror" "$OUT/pipeline$TAG.log" | tail -30
  (cd "$RUN" && find . -name "*.md" -o -name "*.json" -o -name "*.jsonl" -o -name "*.html" -o -name "*.yaml" \
     | grep -v "/checkpoint" | grep -v "model.safetensors" | tar -cJf "$OUT/pipeline$TAG-results.tar.xz" -T -)
  ls -la "$OUT"
fi

if want diag; then
  BASE=${BASE:-/tmp/code-base$TAG-bf16}
  models="'base=$BASE'"
  for stage in sft grpo; do [ -f "$RUN/$stage/final/model.safetensors" ] && models="$models, '$stage=$RUN/$stage/final'"; done
  d=scripts/gpu/experiments/code-diag
  # the base reads its prompts raw (plain template: BOS + prompt), as it was pre-trained; SFT and GRPO through the chat
  # template they were trained with. code-rl-rows: the GRPO prompts (unseen constants of trained families only)
  # DIAG_TASKS: a subset of code-train-rows code-heldout-kind code-rl-rows (e.g. only the rl rows, to judge a base)
  tasks=""; for t in ${DIAG_TASKS:-code-train-rows code-heldout-kind code-rl-rows}; do tasks="$tasks${tasks:+, }$d/$t.yaml"; done
  timeout ${DIAG_TIMEOUT:-300} scripts/gpu/run.sh run recipes/eval-quickstart.yaml output_dir=$RUN-diag "models=[$models]" \
    "tasks=[$tasks]" chat_templates.base=plain \
    samples=1 temperature=1.0 max_new_tokens=384 limit=${DIAG_LIMIT:-200} metrics=null > "$OUT/diag$TAG.log" 2>&1
  echo "diag$TAG: exit $?"; grep -h "accuracy\|rror" "$OUT/diag$TAG.log" | tail -20
  (cd $RUN-diag && find . -name "*.md" -o -name "*.csv" -o -name "samples.jsonl" | tar -cJf "$OUT/diag$TAG.tar.xz" -T -)
fi
