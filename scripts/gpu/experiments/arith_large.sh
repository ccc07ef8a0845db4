#!/usr/bin/env bash
# Experiment: does SFT on 20k arithmetic rows (same generator ranges as datasets/arithmetic, test prompts excluded)
# generalise better than on the shipped 2k rows, and does GRPO then teach? Runs on the GPU machine.
set -uo pipefail
cd "$(dirname "$0")/../../.."
python3 - <<'PY'
import json, random
import pandas as pd
test = set(pd.read_parquet("datasets/arithmetic/test.parquet")["prompt"])
P = [("Tom", "He"), ("Anna", "She"), ("Ben", "He"), ("Lucy", "She"), ("Sam", "He"), ("Mia", "She"), ("Leo", "He"), ("Zoe", "She")]
I = ["apples", "pens", "books", "marbles", "stickers", "cookies", "cards", "coins"]
F = lambda c: f"The answer is \\boxed{{{c}}}."
def one(r, k):
    n, pr = r.choice(P); it = r.choice(I)
    if k == 0:
        a, b = r.randint(1, 50), r.randint(1, 50)
        return f"{n} has {a} {it}. {pr} gets {b} more. How many {it} does {n} have now?", f"{a} + {b} = {a+b}\n{F(a+b)}", a + b
    if k == 1:
        a = r.randint(10, 99); b = r.randint(1, a)
        return f"{n} has {a} {it}. {pr} gives away {b}. How many {it} are left?", f"{a} - {b} = {a-b}\n{F(a-b)}", a - b
    if k == 2:
        a, b = r.randint(2, 9), r.randint(2, 12)
        return f"{n} has {a} boxes with {b} {it} in each box. How many {it} are there in total?", f"{a} * {b} = {a*b}\n{F(a*b)}", a * b
    a, b = r.randint(2, 9), r.randint(2, 9); p = a * b
    if r.random() < 0.5:
        d = r.randint(1, p)
        return f"{n} has {a} bags with {b} {it} in each bag. {pr} gives away {d}. How many {it} are left?", f"{a} * {b} = {p}\n{p} - {d} = {p-d}\n{F(p-d)}", p - d
    e = r.randint(1, 30)
    return f"{n} has {a} bags with {b} {it} in each bag. {pr} finds {e} more. How many {it} does {n} have now?", f"{a} * {b} = {p}\n{p} + {e} = {p+e}\n{F(p+e)}", p + e
r = random.Random(21); seen = set(); rows = []
while len(rows) < 20000:
    p, c, a = one(r, len(rows) % 4)
    if p in test or p in seen: continue
    seen.add(p); rows.append({"prompt": p, "completion": c, "answer": a})
with open("/tmp/arith20k.jsonl", "w") as f:
    for x in rows: f.write(json.dumps(x) + "\n")
print("rows", len(rows))
PY
run() { scripts/gpu/run.sh "$@"; }
for s in 150 600; do
  timeout 200 scripts/gpu/run.sh run recipes/sft-quickstart.yaml output_dir=/tmp/a-sft$s model.device=cuda max_steps=$s data.path=/tmp/arith20k.jsonl \
    checkpoint.every_n_steps=0 logging.progress=plain logging.plain_interval_seconds=60 > /tmp/a-sft$s.log 2>&1 &
done
wait
grep -h "eval loss" /tmp/a-sft*.log
timeout 120 scripts/gpu/run.sh eval --model sft150=/tmp/a-sft150/final --model sft600=/tmp/a-sft600/final --task arithmetic \
  --samples 8 --temperature 1.0 --max-new-tokens 96 --device cuda --output /tmp/a-eval > /tmp/a-eval.log 2>&1 &
for base in sft150 sft600; do
  timeout ${GRPO_TIMEOUT:-200} scripts/gpu/run.sh run recipes/grpo-arith.yaml output_dir=/tmp/a-$base-grpo model.path=/tmp/a-$base/final \
    model.device=cuda max_steps=100 optimizer.lr=2e-4 data.path=/tmp/arith20k.jsonl eval.rows=200 eval.every_n_steps=25 \
    grpo.prompts_per_step=16 checkpoint.every_n_steps=0 logging.progress=plain logging.plain_interval_seconds=60 > /tmp/a-$base-grpo.log 2>&1 &
done
wait
grep -h "held-out" /tmp/a-*-grpo.log
