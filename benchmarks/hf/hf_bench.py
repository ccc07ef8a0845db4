"""Hugging Face transformers baselines for PostTrain's GPU benchmarks (shared/bench/bench-moe.json).

  python3 benchmarks/hf/hf_bench.py train    [--experts default|grouped_mm] [--steps 10] [--warmup 3]
  python3 benchmarks/hf/hf_bench.py generate [--experts default|grouped_mm]

train: AdamW lr 1e-4, batch 8 x 1024 random token ids, next-token CE, bf16; mean tokens/s of `steps` steps after
`warmup`; peak GPU memory. generate: 64 prompts x 32 random tokens, 256 new tokens each (do_sample, temperature 1,
top_p 1), generated tokens per second. Prints one JSON line per run so PostTrain's benchmark tables can read it.
"""
import argparse, json, time, os, sys
import torch
from transformers import DeepseekV3Config, DeepseekV3ForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))

def bench_config():
    for p in [os.path.join(HERE, "..", "..", "..", "shared", "bench", "bench-moe.json"), os.path.join(HERE, "bench-moe.json")]:
        if os.path.exists(p):
            return json.load(open(p))["config"]
    raise SystemExit("bench-moe.json not found")

def make_model(experts):
    cfg = DeepseekV3Config(**{k: v for k, v in bench_config().items() if k != "model_type"})
    kw = {}
    if experts != "default":
        kw["experts_implementation"] = experts
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
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    B, T, V = 8, 1024, model.config.vocab_size
    torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(a.warmup + a.steps):
        ids = torch.randint(0, V, (B, T), device="cuda")
        torch.cuda.synchronize(); t0 = time.perf_counter()
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step(); opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if step >= a.warmup: times.append(time.perf_counter() - t0)
    tps = B * T / (sum(times) / len(times))
    print(json.dumps({"bench": "hf_train", "experts": a.experts, "tokens_per_s": round(tps), "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2), "loss": float(out.loss)}), flush=True)

def generate(a):
    torch.manual_seed(0)
    model = make_model(a.experts).eval()
    V = model.config.vocab_size
    ids = torch.randint(0, V, (64, 32), device="cuda")
    kw = dict(max_new_tokens=256, min_new_tokens=256, do_sample=True, temperature=1.0, top_p=1.0, top_k=0, pad_token_id=0)
    with torch.no_grad():
        model.generate(ids[:, :8], **{**kw, "max_new_tokens": 8, "min_new_tokens": 8})   # warm-up
        torch.cuda.synchronize(); t0 = time.perf_counter()
        out = model.generate(ids, **kw)
        torch.cuda.synchronize(); dt = time.perf_counter() - t0
    new = (out.shape[1] - 32) * out.shape[0]
    print(json.dumps({"bench": "hf_generate", "experts": a.experts, "tokens_per_s": round(new / dt, 1), "seconds": round(dt, 2)}), flush=True)

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["train", "generate"])
    p.add_argument("--experts", default="default")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    a = p.parse_args()
    train(a) if a.what == "train" else generate(a)
