"""Tables of scripts/gpu/experiments/multi_gpu.sh from its JSON lines (one file, every phase's rows):

  python3 scripts/gpu/experiments/multi_gpu_table.py OUT/multi_gpu.jsonl

1. data-parallel scaling of bench-moe-large: per GPU count, PostTrain (bench-train under posttrain launch) and PyTorch
   DDP (hf_ddp_bench.py under torchrun, eager and compiled where run): tokens/s total and per GPU, scaling efficiency
   = per-GPU rate at n / per-GPU rate at 1 GPU (same contender), PostTrain per GPU / DDP per GPU, step ms, comm share,
   peak GiB per rank (max over ranks);
2. expert parallel at the largest n: all-to-all share with and without device-limited routing, and the largest per-step
   loss difference against the data-parallel run at the same n (same init, same batches);
3. whatever else the phases wrote (16B SFT, killed rank) is in their own logs.
"""
import json, sys

def rows(path):
    out = []
    for line in open(path):
        i = line.find("{")
        if i < 0: continue
        try: out.append(json.loads(line[i:]))
        except json.JSONDecodeError: pass
    return out

def fmt(x, spec=",.0f"):
    return "-" if x is None else format(x, spec)

def main(path):
    rs = rows(path)
    pt = [r for r in rs if r.get("bench") == "posttrain_train" and r.get("expert_parallel", 1) == 1 and r.get("zero", 0) == 0]
    fast = [r for r in pt if r.get("fast_path", "off") != "off"]
    pt = [r for r in pt if r.get("fast_path", "off") == "off"]
    ddp = [r for r in rs if r.get("bench") == "hf_ddp_train"]
    contenders = {"PostTrain": {r.get("world_size", 1): r for r in pt}}
    if fast: contenders["PostTrain fast path"] = {r.get("world_size", 1): r for r in fast}
    for compiled in (False, True):
        name = "DDP compiled" if compiled else "DDP eager"
        got = {r["world_size"]: r for r in ddp if bool(r.get("compile")) == compiled}
        if got: contenders[name] = got
    sizes = sorted({n for c in contenders.values() for n in c})
    print(f"### Data-parallel scaling, {(pt or ddp or [{}])[0].get('model', 'bench-moe-large')} "
          f"({(pt or ddp or [{}])[0].get('batch', '?')} x {(pt or ddp or [{}])[0].get('seq', '?')} tokens per GPU)\n")
    print("| GPUs | contender | tokens/s | tokens/s/GPU | scaling eff. | PostTrain/GPU vs this | step ms | comm share | peak GiB/rank | loss |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        for name, by in contenders.items():
            r = by.get(n)
            if r is None: continue
            per = r.get("tokens_per_s_per_gpu", r["tokens_per_s"] / n)
            base = by.get(1)
            eff = per / base.get("tokens_per_s_per_gpu", base["tokens_per_s"]) if base else None
            mine = contenders.get("PostTrain fast path", {}).get(n) or contenders["PostTrain"].get(n)   # PostTrain's best
            vs = None if name.startswith("PostTrain") or mine is None else mine.get("tokens_per_s_per_gpu", mine["tokens_per_s"] / n) / per
            share = r.get("comm_share")
            print(f"| {n} | {name} | {fmt(r['tokens_per_s'])} | {fmt(per)} | {fmt(eff, '.1%')} | {fmt(vs, '.2f') + 'x' if vs else '-'} | "
                  f"{r.get('step_ms', '-')} | {fmt(share, '.1%')} | {r.get('peak_gib', '-')} | {fmt(r.get('loss'), '.4f')} |")

    ep = [r for r in rs if r.get("bench") == "posttrain_train" and r.get("expert_parallel", 1) > 1]
    if ep:
        print("\n### Expert parallel (experts sharded over the GPUs; loss vs data parallel at the same size, same init and batches)\n")
        print("| GPUs | EP | max devices/token | zero | tokens/s/GPU | step ms (fwd / bwd / opt) | all-to-all ms | all-to-all share | comm share | peak GiB/rank | max |loss - DP loss| |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in ep:
            dp = contenders["PostTrain"].get(r["world_size"])
            diff = max(abs(a - b) for a, b in zip(r["losses"], dp["losses"])) if dp and len(dp["losses"]) == len(r["losses"]) else None
            limited = r["max_devices_per_token"] < r["expert_parallel"]
            print(f"| {r['world_size']} | {r['expert_parallel']} | {r['max_devices_per_token']}{' (limited)' if limited else ''} | {r['zero']} | "
                  f"{fmt(r['tokens_per_s_per_gpu'])} | {r['step_ms']} ({r['forward_ms']} / {r['backward_ms']} / {r['optimizer_ms']}) | "
                  f"{r['all_to_all_ms']} | {fmt(r['all_to_all_share'], '.1%')} | {fmt(r['comm_share'], '.1%')} | {r.get('peak_gib', '-')} | "
                  f"{fmt(diff, '.2e')}{' (routing differs: not expected equal)' if limited else ''} |")

if __name__ == "__main__":
    main(sys.argv[1])
