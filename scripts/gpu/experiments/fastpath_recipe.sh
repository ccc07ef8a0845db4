#!/usr/bin/env bash
# Experiment: the training fast path through the recipes on the GPU (issue "A training engine that beats
# transformers + torch.compile"): each recipe run twice from the same seed and init, fast_path=off then fast_path=on;
# prints per-step losses side by side, the largest relative difference, the median training speed of each (steps after
# the first 5; GRPO: the policy update's tokens/s and seconds) and the fast path's mode line (cuda-graph or eager and
# why). RECIPES (default "sft rm grpo"):
#   sft   recipes/sft-quickstart.yaml on bench-moe in bf16, packed 8 x 1,024 arithmetic rows, mtp_lambda 0
#   rm    recipes/rm.yaml on bench-moe (new score head), 16 preference pairs per step, moe_bias_gamma 0
#   grpo  recipes/grpo-arith.yaml on bench-moe from random init with rewards/char_variety.js (a reward with variance
#         inside each group, so the update is real work), 16 prompts x 8, no held-out evaluation
# FP_ON=auto runs the second arm with fast_path=auto (on CUDA it must take the fast path). Usage:
#   OUT=/tmp/out STEPS=30 GRPO_STEPS=10 scripts/gpu/experiments/fastpath_recipe.sh
set -uo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-/tmp/fastpath}
mkdir -p "$OUT"
common="model.path=${MODEL:-bench-moe} model.dtype=bfloat16 model.device=cuda checkpoint.enabled=false logging.progress=plain logging.tensorboard=false"
args() {   # sets the array a to the recipe's arguments
  case $1 in
    sft)  a=(recipes/sft-quickstart.yaml mtp_lambda=0 max_steps=${STEPS:-30} data.max_seq_len=1024 data.batch_size=8 data.eval_every_n_steps=0) ;;
    rm)   a=(recipes/rm.yaml moe_bias_gamma=0 max_steps=${STEPS:-30} data.eval_every_n_steps=0) ;;
    grpo) a=(recipes/grpo-arith.yaml max_steps=${GRPO_STEPS:-10} "rewards=[{name: char_variety, weight: 1.0}]" grpo.dynamic_sampling=false
             eval=null samples_every_n_steps=0) ;;
  esac
}
for r in ${RECIPES:-sft rm grpo}; do
  args $r
  for fp in off on; do
    timeout ${RUN_TIMEOUT:-100} scripts/gpu/run.sh run "${a[@]}" output_dir=/tmp/fp-$r-$fp $common fast_path=$([ $fp = on ] && echo ${FP_ON:-on} || echo off) \
      > "$OUT/$r-$fp.log" 2>&1
    echo "$r fast_path=$fp: exit $?"; grep -E "fast.path|error" "$OUT/$r-$fp.log" | head -3
    cp /tmp/fp-$r-$fp/metrics.jsonl "$OUT/$r-$fp.metrics.jsonl" 2>/dev/null
  done
done
python3 - "$OUT" ${RECIPES:-sft rm grpo} <<'PY'
import json, os, statistics, sys
out = sys.argv[1]
for r in sys.argv[2:]:
    runs = {}
    for fp in ("off", "on"):
        f = os.path.join(out, f"{r}-{fp}.metrics.jsonl")
        runs[fp] = [json.loads(l) for l in open(f)] if os.path.exists(f) else []
    speed = "tokens_per_s/train" if r == "grpo" else "tokens_per_s"
    off, on = ([x for x in runs[k] if "loss" in x and speed in x] for k in ("off", "on"))
    print(f"## {r}")
    if not (off and on):
        print(f"missing metrics (off {len(off)} rows, on {len(on)} rows): see {r}-off.log / {r}-on.log"); continue
    n = min(len(off), len(on))
    for a, b in list(zip(off, on))[:5]:
        print(f"step {a['step']:>3}: loss off {a['loss']:.5f} on {b['loss']:.5f}")
    rel = [abs(a['loss'] - b['loss']) / max(abs(a['loss']), 1e-12) for a, b in zip(off, on)]
    print(f"max relative loss difference over {n} steps: {max(rel):.3e} (first step {rel[0]:.3e})")
    med = lambda rs, k: statistics.median(x[k] for x in (rs[5:] or rs) if k in x)
    peak = lambda rs: max(x.get("memory/gpu_peak_gb", float("nan")) for x in rs)
    extra = " | train s/step" if r == "grpo" else ""
    print(f"| fast_path | {speed} (median, steps > 5) | peak GPU GB{extra} |\n|---|---|---|" + ("---|" if extra else ""))
    for name, rs in (("off", off), ("on", on)):
        t = f" | {med(rs, 'time/train_s'):.3f}" if extra else ""
        print(f"| {name} | {med(rs, speed):,.0f} | {peak(rs):.1f}{t} |")
    print(f"speed-up on/off: {med(on, speed) / med(off, speed):.2f}x")
PY
