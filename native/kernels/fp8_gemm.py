"""Grouped blockwise-scaled FP8 GEMMs for MoE experts (DeepSeek-V3's recipe), written in Triton and compiled ahead of
time into cubins that libposttrain_kernels.so launches (native/kernels/posttrain_fp8.cu); no Python at training time.

  fp8_gemm_mgrouped  c (M, N) bf16: rows come in 128-row blocks, each block belongs to one expert
                     (block_expert[i], -1 = unused: written as zeros); c[blk] = dequant(a[blk]) dequant(b[e])^T.
                     a (M, K) fp8 with 1x128 tile scales (M, K/128); b (E, N, K) fp8 with 128x128 block scales
                     (E, N/128, K/128). Fprop (b = the expert weights) and Dgrad (b = their transposes).
  fp8_gemm_kgrouped  c (E, NA, NB) fp32: c[e] = dequant(a[:, seg_e]) dequant(b[:, seg_e])^T over the token columns
                     seg_e = [segments[e], segments[e+1]) (multiples of 128); a (NA, M), b (NB, M) fp8 with 1x128
                     tile scales along M. Wgrad: a = dY^T, b = X^T, both quantised along the tokens.

Both accumulate each 128-deep slice of the contraction in the tensor cores, then multiply it by the two scales and add
it to an FP32 accumulator (the "promotion" interval of 128 that DeepSeek-V3 describes). All dimensions are multiples of
128 and every pointer is 16-byte aligned: the launcher checks both, and the compile below specialises on them.

Usage (scripts/gpu/build-kernels.sh, on the GPU machine): python3 fp8_gemm.py OUT_DIR
writes OUT_DIR/fp8_gemm_{mgrouped,kgrouped}.cubin and OUT_DIR/fp8_kernels.json (entry names, warps, shared memory,
parameter counts), after checking both kernels against a PyTorch reference on this GPU.
"""

import json
import os
import re
import sys

import triton
import triton.language as tl

BLOCK = 128


@triton.jit
def _tile_order(pid, tiles_m, tiles_n, GROUP_M: tl.constexpr):
    """Program pid -> (tile_m, tile_n), walking GROUP_M tile rows at a time down the columns, so the programs resident
    together share their A rows and a few experts' B (L2 reuse)."""
    width = GROUP_M * tiles_n
    first_m = (pid // width) * GROUP_M
    size_m = tl.minimum(tiles_m - first_m, GROUP_M)
    return first_m + (pid % width) % size_m, (pid % width) // size_m


@triton.jit
def fp8_gemm_mgrouped(a_ptr, a_scale_ptr, b_ptr, b_scale_ptr, c_ptr, block_expert_ptr, M, N, K,
                      BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
    # BLOCK_M divides 128 (a tile never spans two experts); BLOCK_N is a multiple of 128 (the weight's scale blocks).
    tile_m, tile_n = _tile_order(tl.program_id(0), M // BLOCK_M, N // BLOCK_N, GROUP_M)
    offs_m = tile_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tile_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    expert = tl.load(block_expert_ptr + tile_m * BLOCK_M // 128)
    # A padding block (expert -1) runs no iterations and stores zeros; no branch around the loop, so the pipeliner
    # sees a plain loop.
    k_blocks = K // BLOCK_K
    k_iters = tl.where(expert >= 0, k_blocks, 0)
    e = tl.maximum(expert, 0).to(tl.int64)
    a_ptrs = a_ptr + offs_m[:, None].to(tl.int64) * K + offs_k[None, :]                           # (BM, BK)
    b_ptrs = b_ptr + e * N * K + offs_n[None, :].to(tl.int64) * K + offs_k[:, None]               # (BK, BN)
    a_scale_ptrs = a_scale_ptr + offs_m.to(tl.int64) * k_blocks                                   # (BM,)
    b_scale_ptrs = b_scale_ptr + (e * (N // 128) + offs_n // 128) * k_blocks                      # (BN,)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kb in range(0, k_iters):
        a = tl.load(a_ptrs)
        b = tl.load(b_ptrs)
        sa = tl.load(a_scale_ptrs + kb)
        sb = tl.load(b_scale_ptrs + kb)
        acc += tl.dot(a, b) * sa[:, None] * sb[None, :]
        a_ptrs += BLOCK_K
        b_ptrs += BLOCK_K
    c_ptrs = c_ptr + offs_m[:, None].to(tl.int64) * N + offs_n[None, :]
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty))


@triton.jit
def fp8_gemm_kgrouped(a_ptr, a_scale_ptr, b_ptr, b_scale_ptr, c_ptr, segments_ptr, NA, NB, M,
                      BLOCK_A: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_T: tl.constexpr, GROUP_A: tl.constexpr):
    tile_a, tile_b = _tile_order(tl.program_id(0), NA // BLOCK_A, NB // BLOCK_B, GROUP_A)
    expert = tl.program_id(1)
    offs_a = tile_a * BLOCK_A + tl.arange(0, BLOCK_A)
    offs_b = tile_b * BLOCK_B + tl.arange(0, BLOCK_B)
    offs_t = tl.arange(0, BLOCK_T)
    start = tl.load(segments_ptr + expert)
    end = tl.load(segments_ptr + expert + 1)
    t_blocks = M // BLOCK_T
    acc = tl.zeros((BLOCK_A, BLOCK_B), dtype=tl.float32)
    for tb in range(start // BLOCK_T, end // BLOCK_T):
        t0 = tb * BLOCK_T
        cols = (t0 + offs_t).to(tl.int64)
        a = tl.load(a_ptr + offs_a[:, None].to(tl.int64) * M + cols[None, :])                    # (BA, BT)
        b = tl.load(b_ptr + offs_b[None, :].to(tl.int64) * M + cols[:, None])                    # (BT, BB)
        sa = tl.load(a_scale_ptr + offs_a.to(tl.int64) * t_blocks + tb)              # (BA,)
        sb = tl.load(b_scale_ptr + offs_b.to(tl.int64) * t_blocks + tb)              # (BB,)
        acc += tl.dot(a, b) * sa[:, None] * sb[None, :]
    c_ptrs = c_ptr + expert.to(tl.int64) * NA * NB + offs_a[:, None].to(tl.int64) * NB + offs_b[None, :]
    tl.store(c_ptrs, acc)


# Launch configuration, fixed at build time (the cubin is launched with exactly these; the launcher reads the tile from
# fp8_kernels.json). Measured on the H200 by benchmarks/fp8-kernels/tune_fp8_gemm.py at both bench models' routed-expert
# shapes: 64x128 tiles of 4 warps, grouped 8 tile rows at a time, beat 128x128 of 8 warps (launched down the rows) by
# 1.16x (m-grouped, geomean) and 1.28x (k-grouped); 128x256 tiles and 4 warps on 128x128 were slower.
CONFIGS = {
    "mgrouped": dict(BLOCK_M=64, BLOCK_N=BLOCK, BLOCK_K=BLOCK, GROUP_M=8, num_warps=4, num_stages=3),
    "kgrouped": dict(BLOCK_A=64, BLOCK_B=BLOCK, BLOCK_T=BLOCK, GROUP_A=8, num_warps=4, num_stages=4),
}


def _quant_tiles(x):
    """(R, C) fp32, C % 128 == 0 -> fp8 (R, C), fp32 scales (R, C/128): the 1x128 recipe."""
    import torch
    t = x.view(x.shape[0], -1, BLOCK)
    amax = t.abs().amax(-1, keepdim=True)
    s = torch.where(amax > 0, amax / 448.0, torch.ones_like(amax))
    q = (t / s).clamp(-448, 448).to(torch.float8_e4m3fn)
    return q.view_as(x), s.squeeze(-1).contiguous()


def _quant_blocks(w):
    """(E, N, K) fp32 -> fp8 (E, N, K), fp32 scales (E, N/128, K/128): the 128x128 recipe."""
    import torch
    e, n, k = w.shape
    t = w.view(e, n // BLOCK, BLOCK, k // BLOCK, BLOCK)
    amax = t.abs().amax((2, 4), keepdim=True)
    s = torch.where(amax > 0, amax / 448.0, torch.ones_like(amax))
    q = (t / s).clamp(-448, 448).to(torch.float8_e4m3fn)
    return q.view(e, n, k), s.view(e, n // BLOCK, k // BLOCK).contiguous()


def _dequant_tiles(q, s):
    return (q.float().view(q.shape[0], -1, BLOCK) * s.unsqueeze(-1)).view(q.shape)


def _dequant_blocks(q, s):
    e, n, k = q.shape
    return (q.float().view(e, n // BLOCK, BLOCK, k // BLOCK, BLOCK) * s.view(e, n // BLOCK, 1, k // BLOCK, 1)).view(e, n, k)


def _close(got, want, what):
    scale = want.abs().max().item() + 1e-12
    worst = (got.float() - want).abs().max().item() / scale
    if not (worst <= 1e-2 and bool(got.float().isfinite().all())):
        raise SystemExit(f"fp8_gemm.py: {what} differs from the PyTorch reference by {worst:.3g} of its scale")
    return worst


def _entry_parameters(ptx, name):
    """Number of parameters of the PTX entry `name` (user arguments plus any the Triton version appends)."""
    m = re.search(r"\.entry\s+" + re.escape(name) + r"\s*\((.*?)\)", ptx, re.S)
    if not m:
        raise SystemExit(f"fp8_gemm.py: entry {name} not found in the PTX")
    return len(re.findall(r"\.param\s", m.group(1)))


def _field(meta, key, default=None):
    """A metadata field: Triton 3 keeps a named tuple, Triton 2 a dict."""
    if isinstance(meta, dict):
        return meta.get(key, default)
    return getattr(meta, key, default)


def _metadata(compiled, slot):
    meta = compiled.metadata
    name = _field(meta, "name") or getattr(compiled, "name", None)
    if not name:
        raise SystemExit("fp8_gemm.py: the compiled kernel has no entry name in its metadata")
    for extra in ("global_scratch_size", "profile_scratch_size"):
        if _field(meta, extra, 0):
            raise SystemExit(f"fp8_gemm.py: {name} needs {extra} = {_field(meta, extra)}; the launcher passes none")
    cluster = tuple(_field(meta, "cluster_dims", (1, 1, 1)) or (1, 1, 1))
    if cluster not in ((1, 1, 1), (0, 0, 0)) or (_field(meta, "num_ctas", 1) or 1) != 1:
        raise SystemExit(f"fp8_gemm.py: {name} wants a thread-block cluster {cluster}; the launcher does not set one")
    for flag in ("launch_cooperative_grid", "launch_pdl"):
        if _field(meta, flag, False):
            raise SystemExit(f"fp8_gemm.py: {name} sets {flag}; the launcher does a plain launch")
    warps = _field(meta, "num_warps") or getattr(compiled, "num_warps", None)
    shared = _field(meta, "shared")
    if shared is None:
        shared = getattr(compiled, "shared", 0)
    return {
        "slot": slot,
        "name": name,
        "num_warps": int(warps),
        "shared": int(shared),
        "params": _entry_parameters(compiled.asm["ptx"], name),
    }


def build(out_dir):
    import torch
    torch.manual_seed(0)
    dev = torch.device("cuda")
    # Sizes are multiples of 128 (as at run time) and not 1, so the integer specialisation matches every later call.
    m_blocks, n, k, experts = 5, 256, 384, 3
    m = m_blocks * BLOCK
    a32 = torch.randn(m, k, device=dev) * 3
    w32 = torch.randn(experts, n, k, device=dev) * 0.05
    qa, sa = _quant_tiles(a32)
    qb, sb = _quant_blocks(w32)
    block_expert = torch.tensor([2, 0, -1, 0, 1], dtype=torch.int32, device=dev)
    c = torch.empty(m, n, dtype=torch.bfloat16, device=dev)
    cfg = CONFIGS["mgrouped"]
    grid = (m // cfg["BLOCK_M"] * (n // cfg["BLOCK_N"]),)
    mgrouped = fp8_gemm_mgrouped[grid](qa, sa, qb, sb, c, block_expert, m, n, k, **cfg)
    torch.cuda.synchronize()
    ref = torch.zeros(m, n, device=dev)
    da, db = _dequant_tiles(qa, sa), _dequant_blocks(qb, sb)
    for i, e in enumerate(block_expert.tolist()):
        if e >= 0:
            ref[i * BLOCK:(i + 1) * BLOCK] = da[i * BLOCK:(i + 1) * BLOCK] @ db[e].t()
    err_m = _close(c, ref, "fp8_gemm_mgrouped")

    na, nb, tokens = 256, 384, 6 * BLOCK
    segments = torch.tensor([0, 2 * BLOCK, 2 * BLOCK, 5 * BLOCK], dtype=torch.int32, device=dev)  # expert 1 empty
    qx, sx = _quant_tiles(torch.randn(na, tokens, device=dev))
    qy, sy = _quant_tiles(torch.randn(nb, tokens, device=dev) * 0.1)
    ck = torch.empty(3, na, nb, dtype=torch.float32, device=dev)
    cfg = CONFIGS["kgrouped"]
    grid = (na // cfg["BLOCK_A"] * (nb // cfg["BLOCK_B"]), 3)
    kgrouped = fp8_gemm_kgrouped[grid](qx, sx, qy, sy, ck, segments, na, nb, tokens, **cfg)
    torch.cuda.synchronize()
    dx, dy = _dequant_tiles(qx, sx), _dequant_tiles(qy, sy)
    seg = segments.tolist()
    ref_k = torch.stack([dx[:, seg[e]:seg[e + 1]] @ dy[:, seg[e]:seg[e + 1]].t() for e in range(3)])
    err_k = _close(ck, ref_k, "fp8_gemm_kgrouped")

    os.makedirs(out_dir, exist_ok=True)
    entries = []
    for slot, (stem, compiled) in enumerate((("mgrouped", mgrouped), ("kgrouped", kgrouped))):
        info = _metadata(compiled, slot)
        path = os.path.join(out_dir, f"fp8_gemm_{stem}.cubin")
        with open(path + ".tmp", "wb") as f:
            f.write(compiled.asm["cubin"])
        os.replace(path + ".tmp", path)
        info["cubin"] = os.path.basename(path)
        cfg = CONFIGS[stem]
        info["tile"] = [cfg["BLOCK_M"], cfg["BLOCK_N"]] if stem == "mgrouped" else [cfg["BLOCK_A"], cfg["BLOCK_B"]]
        entries.append(info)
    meta_path = os.path.join(out_dir, "fp8_kernels.json")
    with open(meta_path + ".tmp", "w") as f:
        json.dump({"triton": triton.__version__, "capability": list(torch.cuda.get_device_capability()),
                   "kernels": entries}, f, indent=1)
    os.replace(meta_path + ".tmp", meta_path)
    print(f"fp8 grouped GEMMs built into {out_dir} (triton {triton.__version__}); "
          f"check against PyTorch: mgrouped {err_m:.2e}, kgrouped {err_k:.2e} of scale")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: fp8_gemm.py OUT_DIR")
    build(sys.argv[1])
