# The bf16 matmul rate of this GPU (8192^3, median of 10 after 3 warm-ups) as one JSON line: the MFU denominator of
# benchmarks/hf/train_table.py, measured in the same call as the table.
import json, torch
a, b = (torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16) for _ in range(2))
for _ in range(3): a @ b
s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
ts = []
for _ in range(10):
    s.record(); a @ b; e.record(); torch.cuda.synchronize(); ts.append(s.elapsed_time(e))
ts.sort()
print(json.dumps({"bench": "matmul_bf16", "tflops": round(2 * 8192**3 / (ts[5] / 1e3) / 1e12, 1)}))
