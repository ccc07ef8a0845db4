"""The TMA + wgmma grouped FP8 GEMMs (native/kernels/sm90a/fp8_gemm_wgmma.cu) against the Triton kernels PostTrain uses
(native/kernels/fp8_gemm.py, their shipped launch configurations) and BF16 torch._grouped_mm, at both bench models'
routed-expert shapes (Fprop: tokens x K times each expert's N x K; Wgrad: each expert's dY^T X over its tokens, one
expert left without tokens), plus one dense 8192^3 product (one expert).
Builds the .cu with nvcc for sm_90a into /tmp, checks every output against a dequantised fp32 reference (and the
Triton kernel's), and prints one table: ms and TFLOP/s (useful rows only) for each, and the wgmma kernel over BF16 and
over Triton. First a one-tile diagnosis with exact small integers (where any wrong output is a layout error, and
which rows and columns it hits). Usage on the GPU machine: timeout 300 python3 benchmarks/fp8-kernels/bench_wgmma.py
(the timeout: a barrier mistake would hang the kernel)."""
import ctypes
import json
import os
import shutil
import subprocess
import sys

import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "native", "kernels"))
sys.path.insert(0, here)
import fp8_gemm as g  # noqa: E402
from tune_fp8_gemm import routing, timed  # noqa: E402

SHAPES = [  # (model, matrix, tokens routed, N, K, experts): tune_fp8_gemm.py's, and one dense square product
    ("bench-moe", "gate/up", 28307, 384, 768, 32), ("bench-moe", "down", 34115, 768, 384, 32),
    ("bench-moe-large", "gate/up", 48033, 1408, 2048, 64), ("bench-moe-large", "down", 52930, 2048, 1408, 64),
    ("dense", "8192^3", 8192, 8192, 8192, 1),
]


def build():
    nvcc = shutil.which("nvcc") or os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin", "nvcc")
    cudadir = os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))
    stubs = [f"-L{d}" for d in (f"{cudadir}/lib64/stubs", f"{cudadir}/targets/x86_64-linux/lib/stubs") if os.path.isdir(d)]
    out = "/tmp/posttrain-wgmma/libwgmma_fp8.so"
    os.makedirs(os.path.dirname(out), exist_ok=True)
    cmd = [nvcc, "-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC", "-gencode", "arch=compute_90a,code=sm_90a",
           "-Xptxas", "-v", os.path.join(here, "..", "..", "native", "kernels", "sm90a", "fp8_gemm_wgmma.cu"), "-o", out, *stubs, "-lcuda"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    print("nvcc:", " ".join(cmd[1:]), "->", r.returncode)
    print("\n".join(l for l in (r.stdout + r.stderr).splitlines() if "error" in l or "registers" in l or "spill" in l or "warning" in l)[:4000])
    if r.returncode != 0:
        sys.exit("build failed")
    lib = ctypes.CDLL(out)
    for fn in (lib.fp8_mgrouped_wgmma, lib.fp8_kgrouped_wgmma, lib.fp8_kgrouped_wgmma_bf16, lib.fp8_mgrouped_wgmma_persistent,
               lib.fp8_kgrouped_wgmma_persistent, lib.fp8_kgrouped_wgmma_persistent_bf16):
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_void_p] * 6 + [ctypes.c_int] * 4 + [ctypes.c_void_p]
    return lib


def settle(name, seconds=20.0):
    """Waits for the work queued on the current stream, at most `seconds`: a kernel still running then is hung (a
    barrier phase or transaction count mistake never completes), so this names it and ends the process at once (exit
    3) instead of leaving the device call's timeout to find it."""
    import time
    done = torch.cuda.Event()
    done.record()
    deadline = time.monotonic() + seconds
    while not done.query():
        if time.monotonic() > deadline:
            print(f"HANG: {name} has not finished after {seconds:.0f} s; ending the process", flush=True)
            os._exit(3)
        time.sleep(0.01)


def rel_err(got, ref):
    """Largest difference from the reference over the reference's largest magnitude; inf when got is not finite."""
    got = got.float()
    return (got - ref).abs().max().item() / (ref.abs().max().item() + 1e-12) if bool(got.isfinite().all()) else float("inf")


def measure(fields, flops, t_bf16, ref, triton_run, c_tr, wgmma_fn, args, c_wg):
    """Times the Triton and wgmma kernels (the latter only once its output matches the reference) and returns the
    table row: errors relative to the reference's largest magnitude, ms and TFLOP/s beside BF16."""
    t_tr = timed(triton_run)
    stream = torch.cuda.current_stream().cuda_stream
    def wgmma_run():
        rc = wgmma_fn(*args, stream)
        if rc != 0:
            raise RuntimeError(f"{wgmma_fn.__name__} returned {rc}")
    print(f"launch {wgmma_fn.__name__} ({fields['model']} {fields['matrix']})", flush=True)
    wgmma_run(); settle(wgmma_fn.__name__)
    err_wg, err_tr = rel_err(c_wg, ref), rel_err(c_tr, ref)
    ok = err_wg <= 1e-2
    t_wg = timed(wgmma_run) if ok else float("nan")
    return dict(**fields, ok=ok, err_wgmma=float(f"{err_wg:.1e}"), err_triton=float(f"{err_tr:.1e}"), bf16_ms=round(t_bf16, 3),
                triton_ms=round(t_tr, 3), wgmma_ms=round(t_wg, 3), bf16_tflops=round(flops / t_bf16 / 1e9, 1),
                triton_tflops=round(flops / t_tr / 1e9, 1), wgmma_tflops=round(flops / t_wg / 1e9, 1),
                wgmma_x_bf16=round(t_bf16 / t_wg, 2), wgmma_x_triton=round(t_tr / t_wg, 2))


def variant(row, name, fn, args, out, ref, flops):
    """Another kernel of the same contract on the same inputs (its own output buffer, NaN-filled): checked against the
    reference, timed only when right; adds <name>_ms, <name>_tflops and err_<name> to the row, and its verdict to ok."""
    stream = torch.cuda.current_stream().cuda_stream
    out.fill_(float("nan"))
    print(f"launch {fn.__name__} ({row['model']} {row['matrix']})", flush=True)
    rc = fn(*args, stream); settle(fn.__name__)
    err = rel_err(out, ref) if rc == 0 else float("inf")
    t = timed(lambda: fn(*args, stream)) if err <= 1e-2 else float("nan")
    row[f"err_{name}"] = float(f"{err:.1e}")
    row[f"{name}_ms"] = round(t, 3)
    row[f"{name}_tflops"] = round(flops / t / 1e9, 1)
    row["ok"] = row["ok"] and err <= 1e-2
    return row


def wgrad_row(lib, model, matrix, tokens, n, k, experts, counts, dev):
    """The Wgrad product at one shape: c[e] (N, K) = dY[:, seg_e] X[:, seg_e]^T over each expert's token columns, with
    expert 0 given no tokens (its gradient must come out zero)."""
    counts = counts.clone()
    if experts > 1:
        counts[1] += counts[0]; counts[0] = 0
    padded = ((counts + 127) // 128) * 128
    m = int(padded.sum())
    na, nb = n, k
    flops = 2.0 * tokens * na * nb
    dy = torch.randn(tokens, na, device=dev, dtype=torch.bfloat16)
    x = torch.randn(tokens, nb, device=dev, dtype=torch.bfloat16)
    offs = counts.cumsum(0).to(torch.int32).to(dev)
    try:
        t_bf16 = timed(lambda: torch._grouped_mm(dy.t(), x, offs=offs))
    except RuntimeError as ex:   # an empty group refused: report the rest of the row
        print(f"bf16 grouped_mm (wgrad, {model} {matrix}): {str(ex)[:120]}")
        t_bf16 = float("nan")
    qy, sy = g._quant_tiles(torch.randn(na, m, device=dev))
    qx, sx = g._quant_tiles(torch.randn(nb, m, device=dev))
    segments = torch.cat([torch.zeros(1, dtype=torch.long), padded.cumsum(0)]).to(torch.int32).to(dev)
    dyq, dxq = g._dequant_tiles(qy, sy), g._dequant_tiles(qx, sx)
    ref = torch.stack([dyq[:, int(segments[e]):int(segments[e + 1])] @ dxq[:, int(segments[e]):int(segments[e + 1])].t()
                       for e in range(experts)])
    cfg = g.CONFIGS["kgrouped"]
    c_tr = torch.empty(experts, na, nb, device=dev)
    grid = (na // cfg["BLOCK_A"] * (nb // cfg["BLOCK_B"]), experts)
    def triton_run():
        g.fp8_gemm_kgrouped[grid](qy, sy, qx, sx, c_tr, segments, na, nb, m, **cfg)
    c_wg = torch.full((experts, na, nb), float("nan"), device=dev)
    args = (qy.data_ptr(), sy.data_ptr(), qx.data_ptr(), sx.data_ptr(), c_wg.data_ptr(), segments.data_ptr(), na, nb, m, experts)
    row = measure(dict(model=model, matrix=matrix + " wgrad", m=m, n=na, k=nb, experts=experts), flops, t_bf16, ref,
                  triton_run, c_tr, lib.fp8_kgrouped_wgmma, args, c_wg)
    # the same into bf16 (the weight gradient of bf16 weights, no fp32 round trip), and the persistent kernels
    c16 = torch.empty((experts, na, nb), device=dev, dtype=torch.bfloat16)
    args16 = args[:4] + (c16.data_ptr(),) + args[5:]
    variant(row, "wgmma_bf16", lib.fp8_kgrouped_wgmma_bf16, args16, c16, ref, flops)
    variant(row, "persistent", lib.fp8_kgrouped_wgmma_persistent, args, c_wg, ref, flops)
    variant(row, "persistent_bf16", lib.fp8_kgrouped_wgmma_persistent_bf16, args16, c16, ref, flops)
    return row


def diagnose(lib):
    """One 128 x 128 x 128 tile with unit scales and small integer operands (exact in e4m3 and in fp32), so any wrong
    value is a layout error; prints where the kernel's output differs (rows and columns mod the fragment and swizzle
    periods) and whether a permutation of rows or columns of the right answer explains it."""
    dev = torch.device("cuda")
    gen = torch.Generator(device="cpu").manual_seed(1)
    a = torch.randint(-3, 4, (128, 128), generator=gen).float().to(dev)
    b = torch.randint(-3, 4, (1, 128, 128), generator=gen).float().to(dev)
    qa, qb = a.to(torch.float8_e4m3fn), b.to(torch.float8_e4m3fn)
    sa, sb = torch.ones(128, 1, device=dev), torch.ones(1, 1, 1, device=dev)
    be = torch.zeros(1, dtype=torch.int32, device=dev)
    c = torch.full((128, 128), float("nan"), device=dev, dtype=torch.bfloat16)
    rc = lib.fp8_mgrouped_wgmma(qa.data_ptr(), sa.data_ptr(), qb.data_ptr(), sb.data_ptr(), c.data_ptr(), be.data_ptr(),
                                128, 128, 128, 1, torch.cuda.current_stream().cuda_stream)
    settle("fp8_mgrouped_wgmma (one-tile diagnosis)")
    want = a @ b[0].t()
    got = c.float()
    bad = ~torch.isclose(got, want, atol=0.5, rtol=0.01)
    print(f"diagnose: launcher rc {rc}; {int(bad.sum())} of {bad.numel()} outputs wrong; nan {int(got.isnan().sum())}")
    if bad.any():
        r, col = bad.nonzero(as_tuple=True)
        for name, v, mods in (("row", r, (8, 16, 64)), ("col", col, (2, 8, 16, 128))):
            for m in mods:
                hist = torch.bincount(v % m, minlength=m).tolist()
                print(f"  wrong {name} mod {m}: {hist}")
        # is the output the right values at other places? (a row or column permutation: a fragment or swizzle mix-up)
        row_src = [next((j for j in range(128) if torch.allclose(got[i], want[j], atol=0.5)), -1) for i in range(0, 128, 9)]
        col_src = [next((j for j in range(128) if torch.allclose(got[:, i], want[:, j], atol=0.5)), -1) for i in range(0, 128, 9)]
        print(f"  output rows 0, 9, 18, ... equal the right answer's rows {row_src} (-1: none)")
        print(f"  output columns 0, 9, 18, ... equal the right answer's columns {col_src} (-1: none)")
        print(f"  sample (row 0, cols 0..7): got {got[0, :8].tolist()}, want {want[0, :8].tolist()}")
    # the k-grouped (Wgrad) kernel on one 128-token segment: c (128 x 128) = y x^T, both operands K-major over tokens
    y = torch.randint(-3, 4, (128, 128), generator=gen).float().to(dev)
    x = torch.randint(-3, 4, (128, 128), generator=gen).float().to(dev)
    seg = torch.tensor([0, 128], dtype=torch.int32, device=dev)
    ck = torch.full((1, 128, 128), float("nan"), device=dev)
    qy, qx, ones = y.to(torch.float8_e4m3fn), x.to(torch.float8_e4m3fn), torch.ones(128, 1, device=dev)
    rc = lib.fp8_kgrouped_wgmma(qy.data_ptr(), ones.data_ptr(), qx.data_ptr(), ones.data_ptr(), ck.data_ptr(),
                                seg.data_ptr(), 128, 128, 128, 1, torch.cuda.current_stream().cuda_stream)
    settle("fp8_kgrouped_wgmma (one-tile diagnosis)")
    wantk = y @ x.t()
    badk = ~torch.isclose(ck[0], wantk, atol=0.5, rtol=0.01)
    print(f"diagnose k-grouped: launcher rc {rc}; {int(badk.sum())} of {badk.numel()} outputs wrong; nan {int(ck.isnan().sum())}")
    if badk.any():
        r, col = badk.nonzero(as_tuple=True)
        print(f"  wrong rows mod 64: {torch.bincount(r % 64, minlength=64).tolist()}")
        print(f"  wrong cols mod 16: {torch.bincount(col % 16, minlength=16).tolist()}")
        print(f"  sample (row 0, cols 0..7): got {ck[0, 0, :8].tolist()}, want {wantk[0, :8].tolist()}")


def main():
    lib = build()
    diagnose(lib)
    dev = torch.device("cuda")
    gen = torch.Generator().manual_seed(0)
    cfg = g.CONFIGS["mgrouped"]
    rows = []
    for model, matrix, tokens, n, k, experts in SHAPES:
        counts = routing(tokens, experts, gen) if experts > 1 else torch.tensor([tokens])
        padded = ((counts + 127) // 128) * 128
        m = int(padded.sum())
        flops = 2.0 * tokens * n * k
        x = torch.randn(tokens, k, device=dev, dtype=torch.bfloat16)
        w = torch.randn(experts, n, k, device=dev, dtype=torch.bfloat16) * 0.05
        offs = counts.cumsum(0).to(torch.int32).to(dev)
        t_bf16 = timed(lambda: torch._grouped_mm(x, w.transpose(1, 2), offs=offs))
        qa, sa = g._quant_tiles(torch.randn(m, k, device=dev) * 3)
        qb, sb = g._quant_blocks(torch.randn(experts, n, k, device=dev) * 0.05)
        block_expert = torch.repeat_interleave(torch.arange(experts), padded // 128).to(torch.int32).to(dev)
        block_expert[-1] = -1 if experts > 1 and padded[-1] > counts[-1] else block_expert[-1]   # exercise a padding block
        # reference: dequantised operands, fp32
        da, db = g._dequant_tiles(qa, sa), g._dequant_blocks(qb, sb)
        ref = torch.zeros(m, n, device=dev)
        for i, e in enumerate(block_expert.tolist()):
            if e >= 0:
                ref[i * 128:(i + 1) * 128] = da[i * 128:(i + 1) * 128] @ db[e].t()
        c_tr = torch.empty(m, n, device=dev, dtype=torch.bfloat16)
        grid = (m // cfg["BLOCK_M"] * (n // cfg["BLOCK_N"]),)
        def triton_run():
            g.fp8_gemm_mgrouped[grid](qa, sa, qb, sb, c_tr, block_expert, m, n, k, **cfg)
        c_wg = torch.full((m, n), float("nan"), device=dev, dtype=torch.bfloat16)
        args = (qa.data_ptr(), sa.data_ptr(), qb.data_ptr(), sb.data_ptr(), c_wg.data_ptr(), block_expert.data_ptr(), m, n, k, experts)
        row = measure(dict(model=model, matrix=matrix, m=m, n=n, k=k, experts=experts), flops, t_bf16, ref, triton_run, c_tr,
                      lib.fp8_mgrouped_wgmma, args, c_wg)
        variant(row, "persistent", lib.fp8_mgrouped_wgmma_persistent, args, c_wg, ref, flops)
        rows.append(row)
        print(json.dumps(row), flush=True)
        rows.append(wgrad_row(lib, model, matrix, tokens, n, k, experts, counts, dev))
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{torch.cuda.get_device_name()}\n| shape | BF16 grouped_mm TFLOP/s | Triton FP8 | wgmma FP8 | wgmma persistent | wgmma / BF16 | wgmma / Triton | max error (wgmma, Triton) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} {r['matrix']} | {r['bf16_tflops']} | {r['triton_tflops']} | {r['wgmma_tflops']} | {r['persistent_tflops']} | "
              f"{r['wgmma_x_bf16']}x | {r['wgmma_x_triton']}x | {r['err_wgmma']:.1e}, {r['err_triton']:.1e} |")
    sys.exit(0 if all(r["ok"] for r in rows) else 1)


if __name__ == "__main__":
    main()
