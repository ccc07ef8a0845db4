"""Smooth-curve text for the FP8-vs-BF16 loss bar: samples of a random order-2 Markov chain over 64 printable
characters (each context's next-character distribution drawn from a sparse Dirichlet, seed fixed).

Why: on the arithmetic text two identical BF16 runs already end 2% apart (GPU kernels are not bit-deterministic and
that training is chaotic: skills such as carrying appear at run-dependent steps). Learning a Markov chain's
statistics has no such jumps, the loss falls smoothly towards the chain's entropy rate (printed), so the 0.25% bar
of DeepSeek-V3 can be checked against a measured BF16 noise floor. Writes train.jsonl / test.jsonl ({"text": ...}).
"""
import json, math, random, sys

def main():
    out = sys.argv[1]
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    length = 480
    r = random.Random(5)
    alphabet = [chr(c) for c in range(48, 48 + 64)]        # '0'..'o'
    n = len(alphabet)
    table = {}
    entropy = 0.0
    for a in range(n):
        for b in range(n):
            w = [r.gammavariate(0.15, 1.0) for _ in range(n)]
            s = sum(w); p = [x / s for x in w]
            cum, acc = [], 0.0
            for x in p:
                acc += x; cum.append(acc)
            table[(a, b)] = cum
            entropy += -sum(x * math.log(x) for x in p if x > 0)
    print(json.dumps({"markov_contexts": n * n, "mean_context_entropy_nats": entropy / (n * n)}))

    def sample(rr):
        a, b = rr.randrange(n), rr.randrange(n)
        s = [alphabet[a], alphabet[b]]
        for _ in range(length - 2):
            u = rr.random(); cum = table[(a, b)]
            c = next((i for i, v in enumerate(cum) if u <= v), n - 1)
            s.append(alphabet[c]); a, b = b, c
        return "".join(s)

    for split, count, seed in (("train", rows, 6), ("test", 400, 7)):
        rr = random.Random(seed)
        with open(f"{out}/{split}.jsonl", "w") as f:
            for _ in range(count):
                f.write(json.dumps({"text": sample(rr)}) + "\n")

if __name__ == "__main__":
    main()
