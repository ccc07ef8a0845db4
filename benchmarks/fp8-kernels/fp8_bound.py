"""How much FP8 can speed up a training step at most, by Amdahl's law, for a bench model.

DeepSeek-V3's recipe runs the linear layers' GEMMs in FP8 (attention projections, dense MLP, shared and routed
experts) and keeps the embedding, the LM head, the router, the norms and the attention core in BF16. Only the FP8 GEMMs
can get faster, and at most by the card's FP8 / BF16 GEMM ceiling ratio (measured on the H200: 1,325 / 784 TFLOP/s for
blockwise _scaled_mm vs bf16 mm at 8192^3), even with free quantisation. So, with t_fp8 the BF16 step's time in those
GEMMs and t_step the whole BF16 step:

    speedup <= t_step / (t_step - t_fp8 + t_fp8 / ceiling)

This prints, per model: the FLOP share of the FP8-eligible GEMMs, then the bound for a measured BF16 step and a
measured or estimated t_fp8 (--fp8-ms; without it, t_fp8 = the eligible FLOPs at --bf16-tflops, an upper estimate of
their time when the rate given is at or below what those GEMMs reach).

  python3 benchmarks/fp8-kernels/fp8_bound.py ../shared/bench/bench-moe-large.json --tokens 8192 --step-ms 103.8 \
      --fp8-ms 33.6 [--ceiling 1.69] [--layers 27]   (33.6: 19.2 ms measured for the routed FFN + ~14 estimated)
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hf"))
from train_table import matmul_params  # noqa: E402  (the same parameter count as the training table's MFU)


def flops_per_token(c, layers=None):
    """(FP8-eligible, BF16 head + router) training FLOPs per token (3 x forward, 2 per MAC), the layer count, the dense
    layers."""
    p = matmul_params(c)
    L = layers or c["num_hidden_layers"]
    k = c["first_k_dense_replace"]
    eligible = L * p["attention"] + k * p["dense"] + (L - k) * p["experts"]
    bf16 = (L - k) * p["router"] + p["head"]
    return 6 * eligible, 6 * bf16, L, k


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config")
    p.add_argument("--layers", type=int, help="count of decoder layers (default: the config's)")
    p.add_argument("--tokens", type=int, default=8192)
    p.add_argument("--step-ms", type=float, help="the measured BF16 step")
    p.add_argument("--fp8-ms", type=float, help="the BF16 step's time in the FP8-eligible GEMMs (measured)")
    p.add_argument("--bf16-tflops", type=float, default=500.0, help="rate for estimating --fp8-ms when not given")
    p.add_argument("--ceiling", type=float, default=1325.0 / 784.0, help="FP8 / BF16 GEMM rate ratio of the card")
    a = p.parse_args()
    cfg = json.load(open(a.config))
    c = cfg.get("config", cfg)
    eligible, bf16, L, k = flops_per_token(c, a.layers)
    total = eligible + bf16
    print(f"{a.config}: {L} layers ({k} dense), per token {eligible / 1e9:.3f} GFLOP in FP8-eligible GEMMs, "
          f"{bf16 / 1e9:.3f} in the BF16 head and router: eligible share {eligible / total:.1%} of the GEMM FLOPs")
    if a.step_ms:
        t8 = a.fp8_ms if a.fp8_ms else eligible * a.tokens / (a.bf16_tflops * 1e12) * 1e3
        how = "as given" if a.fp8_ms else f"estimated at {a.bf16_tflops:.0f} TFLOP/s"
        at_ceiling = a.step_ms / (a.step_ms - t8 + t8 / a.ceiling)
        free = a.step_ms / (a.step_ms - t8)
        print(f"BF16 step {a.step_ms:.1f} ms, of it {t8:.1f} ms in FP8-eligible GEMMs ({how}): FP8 speedup at most "
              f"{at_ceiling:.2f}x at the card's FP8/BF16 ceiling ({a.ceiling:.2f}x) with free quantisation, "
              f"{free:.2f}x if those GEMMs took no time at all")


if __name__ == "__main__":
    main()
