"""Times the grouped FP8 GEMMs of native/kernels/fp8_gemm.py under several launch configurations at the routed-expert
shapes of both bench models, beside BF16 torch._grouped_mm on the same tokens (the BF16 path's kernel), and prints one
table per kernel. Usage on the GPU machine: python3 benchmarks/fp8-kernels/tune_fp8_gemm.py [--quick]
TFLOP/s count the useful work (routed rows only, not the 128-row padding)."""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "native", "kernels"))
import fp8_gemm as g  # noqa: E402

BIG = 1 << 16
M_CONFIGS = [  # BLOCK_M, BLOCK_N, GROUP_M, warps, stages
    (128, 128, BIG, 8, 4), (128, 128, 1, 8, 4), (128, 128, 8, 8, 4), (128, 128, 8, 8, 3), (128, 128, 8, 4, 4),
    (64, 128, 8, 4, 4), (64, 128, 8, 4, 3), (128, 256, 8, 8, 3), (128, 256, 8, 8, 4), (64, 256, 8, 4, 3),
    (128, 128, 16, 8, 5), (64, 128, 16, 4, 5),
]
K_CONFIGS = [  # BLOCK_A, BLOCK_B, GROUP_A, warps, stages
    (128, 128, BIG, 8, 4), (128, 128, 1, 8, 4), (128, 128, 8, 8, 3), (128, 128, 8, 4, 4), (128, 256, 8, 8, 3),
    (64, 128, 8, 4, 4), (128, 128, 8, 8, 2),
]
# (model, matrix, tokens routed, N, K, experts) as bench-moe / bench-moe-large route them (fp8bench's expert table)
SHAPES = [
    ("bench-moe", "gate/up", 28307, 384, 768, 32), ("bench-moe", "down", 34115, 768, 384, 32),
    ("bench-moe-large", "gate/up", 48033, 1408, 2048, 64), ("bench-moe-large", "down", 52930, 2048, 1408, 64),
]


def timed(fn, reps=20):
    for _ in range(3):
        fn()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ts = []
    for _ in range(reps):
        s.record(); fn(); e.record(); torch.cuda.synchronize(); ts.append(s.elapsed_time(e))
    ts.sort()
    return ts[len(ts) // 2]


def routing(tokens, experts, gen):
    w = torch.rand(experts, generator=gen) + 0.5
    counts = torch.distributions.Multinomial(tokens, probs=w / w.sum()).sample().long()
    return counts


def main():
    quick = "--quick" in sys.argv
    dev = torch.device("cuda")
    gen = torch.Generator().manual_seed(0)
    rows = []
    for model, matrix, tokens, n, k, experts in SHAPES:
        counts = routing(tokens, experts, gen)
        padded = ((counts + 127) // 128) * 128
        m = int(padded.sum())
        # bf16 reference on the unpadded rows
        x = torch.randn(tokens, k, device=dev, dtype=torch.bfloat16)
        w = torch.randn(experts, n, k, device=dev, dtype=torch.bfloat16) * 0.05
        offs = counts.cumsum(0).to(torch.int32).to(dev)
        flops = 2.0 * tokens * n * k
        t_bf16 = timed(lambda: torch._grouped_mm(x, w.transpose(1, 2), offs=offs))
        # fp8 operands in the padded layout
        qa, sa = g._quant_tiles(torch.randn(m, k, device=dev) * 3)
        qb, sb = g._quant_blocks(torch.randn(experts, n, k, device=dev) * 0.05)
        block_expert = torch.repeat_interleave(torch.arange(experts), padded // 128).to(torch.int32).to(dev)
        c = torch.empty(m, n, device=dev, dtype=torch.bfloat16)
        ref = None
        for cfg in (M_CONFIGS[:3] if quick else M_CONFIGS):
            bm, bn, group, warps, stages = cfg
            if n % bn:
                continue
            grid = (m // bm * (n // bn),)
            def run():
                g.fp8_gemm_mgrouped[grid](qa, sa, qb, sb, c, block_expert, m, n, k, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=128,
                                          GROUP_M=group, num_warps=warps, num_stages=stages)
            try:
                t = timed(run)
            except Exception as ex:  # noqa: BLE001 (a config the compiler refuses: report and go on)
                rows.append(dict(kernel="mgrouped", model=model, matrix=matrix, cfg=cfg, error=str(ex)[:120])); continue
            if ref is None:
                ref = c.float().clone()
            worst = ((c.float() - ref).abs().max() / ref.abs().max()).item()
            rows.append(dict(kernel="mgrouped", model=model, matrix=matrix, cfg=cfg, ms=round(t, 3),
                             tflops=round(flops / t / 1e9, 1), bf16_ms=round(t_bf16, 3),
                             x_bf16=round(t_bf16 / t, 2), diff=float(f"{worst:.1e}")))
            print(json.dumps(rows[-1]), flush=True)
        # wgrad: c[e] = dY[:, seg]^T-ish (NA=N, NB=K over the token columns)
        na, nb = n, k
        dy = torch.randn(tokens, na, device=dev, dtype=torch.bfloat16)
        t_bf16w = timed(lambda: torch._grouped_mm(dy.t(), x, offs=offs))
        qy, sy = g._quant_tiles(torch.randn(na, m, device=dev))
        qx, sx = g._quant_tiles(torch.randn(nb, m, device=dev))
        segments = torch.cat([torch.zeros(1, dtype=torch.long), padded.cumsum(0)]).to(torch.int32).to(dev)
        ck = torch.empty(experts, na, nb, device=dev, dtype=torch.float32)
        ref = None
        for cfg in (K_CONFIGS[:2] if quick else K_CONFIGS):
            ba, bb, group, warps, stages = cfg
            if na % ba or nb % bb:
                continue
            grid = (na // ba * (nb // bb), experts)
            def run():
                g.fp8_gemm_kgrouped[grid](qy, sy, qx, sx, ck, segments, na, nb, m, BLOCK_A=ba, BLOCK_B=bb, BLOCK_T=128,
                                          GROUP_A=group, num_warps=warps, num_stages=stages)
            try:
                t = timed(run)
            except Exception as ex:  # noqa: BLE001
                rows.append(dict(kernel="kgrouped", model=model, matrix=matrix, cfg=cfg, error=str(ex)[:120])); continue
            if ref is None:
                ref = ck.clone()
            worst = ((ck - ref).abs().max() / ref.abs().max()).item()
            rows.append(dict(kernel="kgrouped", model=model, matrix=matrix, cfg=cfg, ms=round(t, 3),
                             tflops=round(flops / t / 1e9, 1), bf16_ms=round(t_bf16w, 3),
                             x_bf16=round(t_bf16w / t, 2), diff=float(f"{worst:.1e}")))
            print(json.dumps(rows[-1]), flush=True)
    print("\nkernel    config (block, block, group, warps, stages)   " + "  ".join(f"{s[0][-5:]}:{s[1]:>7}" for s in SHAPES) + "   geomean x bf16")
    for kernel, configs in (("mgrouped", M_CONFIGS), ("kgrouped", K_CONFIGS)):
        for cfg in configs:
            got = [r for r in rows if r["kernel"] == kernel and r["cfg"] == cfg and "ms" in r]
            if not got:
                continue
            xs = [r["x_bf16"] for r in got]
            gm = 1.0
            for v in xs:
                gm *= v
            gm **= 1 / len(xs)
            print(f"{kernel:9} {str(cfg):44} " + "  ".join(f"{r['tflops']:7.1f}T {r['x_bf16']:4.2f}" for r in got) + f"   {gm:.2f}")


if __name__ == "__main__":
    main()
