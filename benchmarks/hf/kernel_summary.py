"""Sums the GPU kernels of a Chrome trace by name: a trace from torch.profiler (export_chrome_trace) or from PostTrain's
`bench-train --profile` (libtorch's Kineto profiler through native/profiler), so both sides are counted the same way.

  python3 benchmarks/hf/kernel_summary.py TRACE.json STEPS [OUT.tsv] [--top 40]

Prints and writes: kernel name, microseconds per step (total / STEPS), launches per step, share of all kernel time;
memcpy and memset activity is summed as "[memcpy ...]" / "[memset ...]" rows.
"""
import json, sys
from collections import defaultdict

def summarise(path, steps):
    events = json.load(open(path)).get("traceEvents", [])
    time, calls = defaultdict(float), defaultdict(int)
    for e in events:
        cat = e.get("cat", "")
        if e.get("ph") != "X" or cat not in ("kernel", "gpu_memcpy", "gpu_memset"):
            continue
        name = e.get("name", "?") if cat == "kernel" else f"[{cat[4:]} {e.get('name', '')}]"
        time[name] += float(e.get("dur", 0))
        calls[name] += 1
    total = sum(time.values()) or 1.0
    rows = sorted(((n, t / steps, calls[n] / steps, t / total) for n, t in time.items()), key=lambda r: -r[1])
    return rows, total / steps

def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 40
    if "--top" in sys.argv: args.remove(str(top))
    path, steps = args[0], int(args[1])
    rows, per_step = summarise(path, steps)
    if len(args) > 2:
        with open(args[2], "w") as f:
            f.write("kernel\tus_per_step\tcalls_per_step\tshare\n")
            for n, us, c, sh in rows: f.write(f"{n[:200]}\t{us:.1f}\t{c:.1f}\t{sh:.4f}\n")
    print(f"{path}: {per_step / 1000:.2f} ms of GPU activity per step, {sum(r[2] for r in rows):.0f} launches per step")
    print("| us/step | calls | share | kernel |\n|---|---|---|---|")
    for n, us, c, sh in rows[:top]:
        print(f"| {us:.0f} | {c:.1f} | {100 * sh:.1f}% | {n[:110]} |")

if __name__ == "__main__":
    main()
