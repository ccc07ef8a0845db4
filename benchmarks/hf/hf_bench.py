"""Hugging Face transformers baselines for PostTrain's GPU benchmarks (shared/bench/bench-moe.json, bench-moe-large.json).

  python3 benchmarks/hf/hf_bench.py train    [--config bench-moe.json] [--experts default|grouped_mm] [--compile]
                                             [--batch 8] [--seq 1024] [--steps 10] [--warmup 3] [--profile trace.json]
  python3 benchmarks/hf/hf_bench.py generate [--experts default|grouped_mm] [--compile]

train: AdamW lr 1e-4, random token ids, next-token CE, model built in bf16 (parameters, gradients and AdamW state in
bf16); mean tokens/s of `steps` steps after `warmup`; step split (forward, backward, optimizer) from CUDA events;
peak = torch.cuda.max_memory_allocated() since the model and optimizer were built. --compile: torch.compile(model)
and torch.optim.AdamW(fused=True), what a PyTorch user gets today (compile time stays in the warm-up). generate: 64 prompts x 32 random tokens, 256 new tokens each (do_sample, temperature 1,
top_p 1), generated tokens per second; --compile: a static cache and torch.compile(forward, mode="reduce-overhead"). Prints one JSON line per run so PostTrain's benchmark tables can read it.
"""
import argparse, json, time, os, sys
import torch
from transformers import DeepseekV3Config, DeepseekV3ForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))

CONFIG = "bench-moe.json"

def bench_config():
    if os.path.exists(CONFIG):
        return json.load(open(CONFIG))["config"]
    for p in [os.path.join(HERE, "..", "..", "..", "shared", "bench", CONFIG), os.path.join(HERE, CONFIG)]:
        if os.path.exists(p):
            return json.load(open(p))["config"]
    raise SystemExit(f"{CONFIG} not found")

def make_model(experts):
    cfg = DeepseekV3Config(**{k: v for k, v in bench_config().items() if k != "model_type"})
    kw = {}
    if experts != "default":
        kw["experts_implementation"] = experts
    with torch.device("cuda"):   # initialise on the GPU (the 2.5 B bench-moe-large takes a minute on the CPU)
        try:
            model = DeepseekV3ForCausalLM._from_config(cfg, torch_dtype=torch.bfloat16, **kw)
        except TypeError:
            model = DeepseekV3ForCausalLM._from_config(cfg, torch_dtype=torch.bfloat16)
            if experts != "default":
                model.set_experts_implementation(experts)
    return model.cuda()

def train(a):
    torch.manual_seed(0)
    model = make_model(a.experts).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True) if a.compile else torch.optim.AdamW(model.parameters(), lr=1e-4)
    run = torch.compile(model) if a.compile else model
    B, T, V = a.batch, a.seq, model.config.vocab_size
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    built = torch.cuda.memory_allocated()   # the model (AdamW's state comes at its first step)
    times, split = [], [0.0, 0.0, 0.0]
    t_start = time.perf_counter()
    for step in range(a.warmup + a.steps):
        ids = torch.randint(0, V, (B, T), device="cuda")
        ev = [torch.cuda.Event(enable_timing=True) for _ in range(4)]
        torch.cuda.synchronize(); t0 = time.perf_counter()
        ev[0].record()
        out = run(input_ids=ids, labels=ids)
        ev[1].record()
        out.loss.backward()
        ev[2].record()
        opt.step(); opt.zero_grad(set_to_none=True)
        ev[3].record()
        torch.cuda.synchronize()
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
            for i in range(3): split[i] += ev[i].elapsed_time(ev[i + 1])
        elif step == a.warmup - 1:
            warm_s = time.perf_counter() - t_start
    if a.profile:   # 3 more steps traced by torch.profiler into a Chrome trace (benchmarks/hf/kernel_summary.py sums it)
        from torch.profiler import profile, ProfilerActivity
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                ids = torch.randint(0, V, (B, T), device="cuda")
                run(input_ids=ids, labels=ids).loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
        prof.export_chrome_trace(a.profile)
    n = len(times)
    tps = B * T / (sum(times) / n)
    name = os.path.splitext(os.path.basename(CONFIG))[0]
    print(json.dumps({"bench": "hf_train", "model": name, "experts": a.experts, "compile": a.compile, "batch": B, "seq": T,
                      "tokens_per_s": round(tps), "step_ms": round(1000 * sum(times) / n, 1),
                      "forward_ms": round(split[0] / n, 1), "backward_ms": round(split[1] / n, 1), "optimizer_ms": round(split[2] / n, 1),
                      "warmup_s": round(warm_s, 1), "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2), "before_steps_gib": round(built / 2**30, 2), "loss": float(out.loss)}), flush=True)

def generate(a):
    torch.manual_seed(0)
    model = make_model(a.experts).eval()
    V = model.config.vocab_size
    ids = torch.randint(0, V, (64, 32), device="cuda")
    kw = dict(max_new_tokens=256, min_new_tokens=256, do_sample=True, temperature=1.0, top_p=1.0, top_k=0, pad_token_id=0)
    if a.compile:
        # transformers' documented fast path: a static KV cache and the forward compiled (CUDA graphs via
        # mode="reduce-overhead"); the warm-up below runs the full shape, so compilation stays out of the timing
        kw["cache_implementation"] = "static"
        model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=False)
    with torch.no_grad():
        warm = ids if a.compile else ids[:, :8]
        model.generate(warm, **{**kw, "max_new_tokens": 8 if not a.compile else 256, "min_new_tokens": 8 if not a.compile else 256})
        torch.cuda.synchronize(); t0 = time.perf_counter()
        out = model.generate(ids, **kw)
        torch.cuda.synchronize(); dt = time.perf_counter() - t0
    new = (out.shape[1] - 32) * out.shape[0]
    print(json.dumps({"bench": "hf_generate", "experts": a.experts, "compile": a.compile, "tokens_per_s": round(new / dt, 1),
                      "seconds": round(dt, 2)}), flush=True)

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["train", "generate"])
    p.add_argument("--experts", default="default")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--config", default="bench-moe.json", help="a bench config json (path, or a name in shared/bench)")
    p.add_argument("--compile", action="store_true", help="torch.compile(model) + AdamW(fused=True)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--profile", default="", help="train: trace 3 extra steps with torch.profiler into this Chrome JSON")
    a = p.parse_args()
    CONFIG = a.config
    train(a) if a.what == "train" else generate(a)
