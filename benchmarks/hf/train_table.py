"""Prints the same-run training table of benchmarks/run-gpu.sh train from its JSON lines (bench-train.jsonl).

For each model: PostTrain eager, PostTrain fast path (fp32 master weights, and bf16 parameters as the transformers
baseline keeps them), transformers eager (grouped_mm experts), transformers + torch.compile + fused AdamW. Columns:
tokens/s, step ms (forward / backward / optimizer where measured), peak GiB (CUDA caching allocator peak for every
contender), MFU = model FLOPs per token x tokens/s / the bf16 matmul rate measured in the same call, and the ratio to
the compiled baseline. Model FLOPs per token (training = 3 x forward): 2 x the matmul parameters a token passes
(attention projections, dense MLP, shared + top-k routed experts, router, LM head) plus causal attention
2 x heads x (qk + v) x T/2, all times 3.
  python3 benchmarks/hf/train_table.py bench-train.jsonl
"""
import json, os, sys

HERE = os.path.dirname(os.path.abspath(__file__))

def matmul_params(c):
    """The matmul parameters a token passes, by kind: per layer attention projections, a dense MLP, a MoE layer's
    shared + top-k routed experts, its router; and the LM head."""
    H, heads = c["hidden_size"], c["num_attention_heads"]
    qk = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
    v, r, rope = c["v_head_dim"], c["kv_lora_rank"], c["qk_rope_head_dim"]
    q = H * c["q_lora_rank"] + c["q_lora_rank"] * heads * qk if c.get("q_lora_rank") else H * heads * qk
    return dict(attention=q + H * (r + rope) + r * heads * (c["qk_nope_head_dim"] + v) + heads * v * H,
                dense=3 * H * c["intermediate_size"],
                experts=3 * H * c["moe_intermediate_size"] * (c["num_experts_per_tok"] + c["n_shared_experts"]),
                router=H * c["n_routed_experts"], head=H * c["vocab_size"])

def flops_per_token(c, T):
    p = matmul_params(c)
    L, k = c["num_hidden_layers"], c["first_k_dense_replace"]
    params = L * p["attention"] + k * p["dense"] + (L - k) * (p["experts"] + p["router"]) + p["head"]
    heads, qk, v = c["num_attention_heads"], c["qk_nope_head_dim"] + c["qk_rope_head_dim"], c["v_head_dim"]
    attn_core = L * 2 * heads * (qk + v) * T / 2
    return 3 * (2 * params + attn_core)

def main(path):
    rows = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
    rate = next((r["tflops"] for r in rows if r.get("bench") == "matmul_bf16"), None)
    print(f"bf16 matmul 8192^3 in this call: {rate} TFLOP/s" if rate else "no matmul rate measured")
    for model in ["bench-moe", "bench-moe-large"]:
        cfg = json.load(open(os.path.join(HERE, model + ".json")))["config"]
        mine = [r for r in rows if r.get("model") == model and r.get("bench") in ("posttrain_train", "hf_train")
                and r.get("layers", cfg["num_hidden_layers"]) == cfg["num_hidden_layers"]]   # not --layers variants
        if not mine: continue
        T = mine[0]["seq"]
        fpt = flops_per_token(cfg, T)
        base = next((r for r in mine if r.get("bench") == "hf_train" and r.get("compile")), None)
        print(f"\n{model} ({mine[0]['batch']} x {T} tokens, {fpt / 1e9:.2f} GFLOP/token)")
        print(f"| contender | tokens/s | step ms (fwd / bwd / opt) | peak GiB | MFU | vs compiled |")
        print(f"|---|---|---|---|---|---|")
        for r in mine:
            if r["bench"] == "hf_train":
                name = "transformers " + ("+ torch.compile + fused AdamW" if r["compile"] else f"eager ({r['experts']})")
            else:
                fp = r.get("fast_path", "off")
                name = "PostTrain eager" if fp == "off" else f"PostTrain fast path [{fp}]"
                name += f", {r.get('params', 'fp32')} params"
                if r.get("recompute", "none") != "none": name += f", recompute {r['recompute']}"
                if r.get("kernels", {}).get("train") == "off": name += ", train kernels off"
                if r.get("kernels", {}).get("recomputed_experts") == "off": name += ", experts' xs and h saved (no recompute)"
            split = f"{r['step_ms']}" + (f" ({r['forward_ms']} / {r['backward_ms']} / {r['optimizer_ms']})" if "forward_ms" in r else (" (one graph)" if "graph" in r.get("fast_path", "") and "off" not in r.get("fast_path", "") else " (not split)"))
            mfu = f"{100 * fpt * r['tokens_per_s'] / (rate * 1e12):.1f}%" if rate else "-"
            ratio = f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x" if base else "-"
            print(f"| {name} | {r['tokens_per_s']:,} | {split} | {r.get('peak_gib', '-')} | {mfu} | {ratio} |")
        for r in mine:
            if "self_check" in r: print("self-check:", json.dumps(r["self_check"]))

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench-train.jsonl")
