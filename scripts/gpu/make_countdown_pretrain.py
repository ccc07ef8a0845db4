"""Countdown puzzles with worked solutions for pre-training the tiny Countdown base model (scripts/gpu/pretrain_tiny_base.sh
countdown). The puzzle kinds of datasets/countdown (CountdownGenerator: 3 numbers in 1..10, the target built by
combining the shuffled numbers left to right with random + - * / (division only when exact, every intermediate a
positive integer up to 1000), target 1..100 and not one of the numbers), the same completion layout (one step per
line, then <answer>expression</answer>), drawn with another generator and seed, and never a prompt of the test split.
Writes JSONL rows {prompt, completion}. Needs pandas (to read the test split's prompts).
Usage: make_countdown_pretrain.py OUT.jsonl [--count N] [--numbers MIN MAX] [--max-number M] [--test TEST.parquet]
(the shape options as CountdownShape; defaults: the shipped shape and split).
"""
import argparse, json, random
import pandas as pd

ap = argparse.ArgumentParser()
ap.add_argument("out", nargs="?", default="/tmp/countdown-pretrain.jsonl")
ap.add_argument("--count", type=int, default=45000)
ap.add_argument("--numbers", type=int, nargs=2, default=[3, 3])
ap.add_argument("--max-number", type=int, default=10)
ap.add_argument("--test", default="datasets/countdown/test.parquet")
a = ap.parse_args()
test = set(pd.read_parquet(a.test)["prompt"])

def one(r):
    numbers = [r.randint(1, a.max_number) for _ in range(r.randint(*a.numbers))]
    order = numbers[:]
    r.shuffle(order)
    value, expr, composite, steps = order[0], str(order[0]), False, []
    for n in order[1:]:
        op = r.choice("+-*/")
        number_first = r.random() < 0.5
        left, right = (n, value) if number_first else (value, n)
        if op == "+": res = left + right
        elif op == "-": res = left - right
        elif op == "*": res = left * right
        else:
            if left % right: return None
            res = left // right
        if res <= 0 or res > 1000: return None
        steps.append(f"{left} {op} {right} = {res}")
        acc = f"({expr})" if composite else expr
        expr = f"{n} {op} {acc}" if number_first else f"{acc} {op} {n}"
        composite, value = True, res
    if value > 100 or value in numbers: return None
    prompt = (f"Using the numbers [{', '.join(map(str, numbers))}], create an equation that equals {value}. "
              "You can use +, -, *, / and each number exactly once. Put the final equation in <answer> </answer> tags.")
    return prompt, "\n".join(steps) + f"\n<answer>{expr}</answer>"

# distinct (puzzle, solution) pairs; small shapes have fewer than --count of them, then all are written
r, seen, rows, tries = random.Random(33), set(), [], 0
while len(rows) < a.count and tries < 50 * a.count:
    tries += 1
    x = one(r)
    if x is None or x[0] in test or x in seen: continue
    seen.add(x); rows.append({"prompt": x[0], "completion": x[1]})
with open(a.out, "w") as f:
    for x in rows: f.write(json.dumps(x) + "\n")
print("rows", len(rows))
