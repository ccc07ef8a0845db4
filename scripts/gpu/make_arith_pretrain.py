"""20,000 arithmetic word problems with solutions for pre-training the tiny base model (scripts/gpu/pretrain_tiny_base.sh).

Same four kinds and number ranges as datasets/arithmetic (ArithmeticGenerator), drawn with another generator and seed,
and never a prompt of datasets/arithmetic/test.parquet (so evaluations on that split stay held out). Writes JSONL rows
{prompt, completion, answer}. Needs pandas (to read the test split's prompts).
"""
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
import sys
out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/arith20k.jsonl"
with open(out, "w") as f:
    for x in rows: f.write(json.dumps(x) + "\n")
print("rows", len(rows))
