#!/usr/bin/env bash
# Issue 18's GPU experiment on a model with many experts: benchmarks/r3/tiny-moe-64e.json (tiny-moe's shape with 64
# routed experts top-6 in 8 groups, top-4 groups, 10.7 M parameters) pre-trained on arithmetic text from random init
# (scripts/gpu/pretrain_tiny_base.sh, as models/tiny-moe-arith-base was), SFT'd like the quickstart, then GRPO
# (recipes/grpo-arith.yaml in bf16 with CUDA-graph rollouts) in three arms from that same start, side by side on the
# GPU: plain, R3 (grpo.routing_replay) and R3 + TIS (grpo.rollout_correction=tis). All arms take the same policy
# update (FAST_PATH, default auto: the captured fast path on CUDA, which replays routing from static buffers since
# 2026-12-05; off for the plain update), so the arms differ only in the corrections. Prints, per arm
# and 30-step window, reward, entropy, mean / max |delta log p|, k3 KL, routing disagreement and the IS weight, and the
# held-out greedy / sampled accuracy curve (every 30 steps). Usage:
#   OUT=/tmp/out BASE_STEPS=1500 GRPO_STEPS=150 scripts/gpu/experiments/r3_many_experts.sh
set -uo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-/tmp/r3many}
mkdir -p "$OUT"
if [ ! -f /tmp/base64/final/model.safetensors ]; then
  scripts/gpu/run.sh init-checkpoint --config benchmarks/r3/tiny-moe-64e.json --output /tmp/init64 --dtype float32 --device cuda --seed 0 | tail -1
  MODEL=/tmp/init64 STEPS=${BASE_STEPS:-1500} timeout ${BASE_TIMEOUT:-300} scripts/gpu/pretrain_tiny_base.sh /tmp/base64 > "$OUT/base.log" 2>&1
  echo "base: exit $?"; grep -h "eval loss" "$OUT/base.log" | tail -3
fi
timeout ${SFT_TIMEOUT:-150} scripts/gpu/run.sh run recipes/sft-quickstart.yaml output_dir=/tmp/sft64 model.path=/tmp/base64/final \
  model.device=cuda checkpoint.every_n_steps=0 logging.progress=plain logging.plain_interval_seconds=60 > "$OUT/sft.log" 2>&1
echo "sft: exit $?"; grep -h "eval loss" "$OUT/sft.log" | tail -2
for arm in plain r3 r3tis; do
  case $arm in plain) f="grpo.routing_replay=false";; r3) f="grpo.routing_replay=true";; r3tis) f="grpo.routing_replay=true grpo.rollout_correction=tis";; esac
  ( timeout ${GRPO_TIMEOUT:-420} scripts/gpu/run.sh run recipes/grpo-arith.yaml output_dir=/tmp/r3many-$arm model.path=/tmp/sft64/final \
      model.device=cuda model.dtype=bfloat16 fast_path=${FAST_PATH:-auto} max_steps=${GRPO_STEPS:-150} checkpoint.every_n_steps=0 \
      logging.progress=plain logging.plain_interval_seconds=60 $f > "$OUT/$arm.log" 2>&1
    echo "$arm: exit $?"; cp /tmp/r3many-$arm/metrics.jsonl "$OUT/r3many-$arm.jsonl" 2>/dev/null ) &
done
wait
python3 - "$OUT" <<'PY'
import json, os, re, sys
out = sys.argv[1]
keys = ["reward/mean", "entropy", "mismatch/logprob_abs_mean", "mismatch/logprob_abs_max", "mismatch/k3_kl",
        "mismatch/routing_disagreement", "mismatch/is_weight_mean", "grad_norm"]
print("| arm | steps | " + " | ".join(keys) + " |")
print("|---|---|" + "---|" * len(keys))
for arm in ("plain", "r3", "r3tis"):
    f = os.path.join(out, f"r3many-{arm}.jsonl")
    rows = [r for r in (json.loads(l) for l in open(f)) if "time/train_s" in r] if os.path.exists(f) else []
    for a in range(0, len(rows), 30):
        w = rows[a:a + 30]
        def mean(k):
            v = [r[k] for r in w if isinstance(r.get(k), (int, float))]
            return f"{sum(v) / len(v):.4g}" if v else "-"
        print(f"| {arm} | {a + 1}-{a + len(w)} | " + " | ".join(mean(k) for k in keys) + " |")
print()
for arm in ("plain", "r3", "r3tis"):
    log = os.path.join(out, f"{arm}.log")
    if not os.path.exists(log): continue
    curve = re.findall(r"held-out math \(greedy[^)]*\) (before training|at step \d+|after training): ([0-9.]+); sampled \([^)]*\): ([0-9.]+)", open(log).read())
    print(f"{arm}: " + ", ".join(f"{w} {g}/{s}" for w, g, s in curve))
PY
