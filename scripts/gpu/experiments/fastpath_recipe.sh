#!/usr/bin/env bash
# Experiment: the training fast path through the sft recipe on the GPU (issue "A training engine that beats
# transformers + torch.compile"): the same run (bench-moe in bf16, packed 8 x 1,024 arithmetic rows, AdamW, mtp_lambda 0,
# same seed and init) with fast_path=off and fast_path=on; prints per-step losses side by side, the largest relative
# difference, the median tokens/s of each (steps after the first 5) and the fast path's mode line (cuda-graph or eager
# and why). Usage: OUT=/tmp/out STEPS=30 scripts/gpu/experiments/fastpath_recipe.sh
set -uo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-/tmp/fastpath}
mkdir -p "$OUT"
for fp in off on; do
  timeout ${RUN_TIMEOUT:-80} scripts/gpu/run.sh run recipes/sft-quickstart.yaml output_dir=/tmp/fp-$fp model.path=${MODEL:-bench-moe} \
    model.dtype=bfloat16 model.device=cuda mtp_lambda=0 max_steps=${STEPS:-30} data.max_seq_len=1024 data.batch_size=8 \
    data.eval_every_n_steps=0 checkpoint.enabled=false fast_path=$fp logging.progress=plain logging.tensorboard=false \
    > "$OUT/fastpath-$fp.log" 2>&1
  echo "fast_path=$fp: exit $?"; grep -E "fast.path|error" "$OUT/fastpath-$fp.log" | head -4
  cp /tmp/fp-$fp/metrics.jsonl "$OUT/fastpath-$fp.metrics.jsonl" 2>/dev/null
done
python3 - "$OUT" <<'PY'
import json, os, statistics, sys
out = sys.argv[1]
runs = {}
for fp in ("off", "on"):
    f = os.path.join(out, f"fastpath-{fp}.metrics.jsonl")
    runs[fp] = [json.loads(l) for l in open(f)] if os.path.exists(f) else []
off, on = ([r for r in runs[k] if "loss" in r and "tokens_per_s" in r] for k in ("off", "on"))
for a, b in zip(off, on):
    print(f"step {a['step']:>3}: loss off {a['loss']:.5f} on {b['loss']:.5f} rel {abs(a['loss'] - b['loss']) / abs(a['loss']):.2e}")
if off and on:
    n = min(len(off), len(on))
    print(f"max relative loss difference over {n} steps: {max(abs(a['loss'] - b['loss']) / abs(a['loss']) for a, b in zip(off, on)):.3e}")
    med = lambda rs: statistics.median(r["tokens_per_s"] for r in rs[5:] or rs)
    peak = lambda rs: max(r.get("memory/gpu_peak_gb", float("nan")) for r in rs)
    print(f"| fast_path | tokens/s (median, steps > 5) | peak GPU GB |\n|---|---|---|\n| off | {med(off):,.0f} | {peak(off):.1f} |\n| on | {med(on):,.0f} | {peak(on):.1f} |")
    print(f"speed-up on/off: {med(on) / med(off):.2f}x")
PY
