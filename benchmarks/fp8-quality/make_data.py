"""Fresh synthetic text for the FP8-vs-BF16 loss comparison (benchmarks/run-gpu.sh quality).

Arithmetic word problems in the shipped dataset's style, but many more (default 60,000 train rows: every training
step sees new text, so the comparison measures learning, not memorisation of 2,000 rows) and trained on ALL tokens
(prompt included), so most of the loss is the names, items and numbers' entropy, as in pre-training, where
DeepSeek-V3's 0.25% bar was measured. Writes train.jsonl and test.jsonl (prompt, completion) into the given folder.
"""
import json, random, sys

PEOPLE = [("Tom", "He"), ("Anna", "She"), ("Ben", "He"), ("Lucy", "She"), ("Sam", "He"), ("Mia", "She"), ("Leo", "He"),
          ("Zoe", "She"), ("Max", "He"), ("Ivy", "She"), ("Omar", "He"), ("Nina", "She")]
ITEMS = ["apples", "pens", "books", "marbles", "stickers", "cookies", "cards", "coins", "shells", "stamps", "beads", "toys"]


def one(r):
    name, pron = r.choice(PEOPLE)
    item = r.choice(ITEMS)
    k = r.randrange(4)
    if k == 0:
        a, b = r.randint(1, 99), r.randint(1, 99)
        return (f"{name} has {a} {item}. {pron} gets {b} more. How many {item} does {name} have now?",
                f"{a} + {b} = {a + b}\nThe answer is \\boxed{{{a + b}}}.")
    if k == 1:
        a = r.randint(10, 199); b = r.randint(1, a)
        return (f"{name} has {a} {item}. {pron} gives away {b}. How many {item} are left?",
                f"{a} - {b} = {a - b}\nThe answer is \\boxed{{{a - b}}}.")
    if k == 2:
        a, b = r.randint(2, 12), r.randint(2, 12)
        return (f"{name} has {a} boxes with {b} {item} in each box. How many {item} are there in total?",
                f"{a} * {b} = {a * b}\nThe answer is \\boxed{{{a * b}}}.")
    a, b = r.randint(2, 9), r.randint(2, 9); p = a * b; e = r.randint(1, 30)
    return (f"{name} has {a} bags with {b} {item} in each bag. {pron} finds {e} more. How many {item} does {name} have now?",
            f"{a} * {b} = {p}\n{p} + {e} = {p + e}\nThe answer is \\boxed{{{p + e}}}.")


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 60000
    for split, rows, seed in (("train", n, 11), ("test", 1000, 12)):
        r = random.Random(seed)
        with open(f"{out}/{split}.jsonl", "w") as f:
            for _ in range(rows):
                p, c = one(r)
                f.write(json.dumps({"prompt": p, "completion": c}) + "\n")


if __name__ == "__main__":
    main()
