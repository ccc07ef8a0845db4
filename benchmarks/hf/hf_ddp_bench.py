"""PyTorch DDP baseline for PostTrain's multi-GPU benchmark (posttrain launch ... bench-train): the transformers
DeepseekV3 model of a bench json, built exactly as hf_bench.py builds it (bf16 parameters, --experts grouped_mm),
trained data-parallel under torchrun with the same batch per GPU as PostTrain.

  torchrun --nproc-per-node N benchmarks/hf/hf_ddp_bench.py [--config bench-moe-large.json] [--experts grouped_mm]
           [--compile] [--batch 4] [--seq 2048] [--steps 10] [--warmup 3] [--find-unused]

Step as hf_bench.py train: AdamW lr 1e-4 (--compile: torch.compile of the DDP model + AdamW(fused=True)), random token
ids (each rank its own stream), next-token CE. DDP averages gradients over the ranks (NCCL, bucketed, overlapped with
backward). tokens/s = N x batch x seq / the slowest rank's mean step; per GPU = that / N; peak = the largest rank's
torch.cuda.max_memory_allocated() since the model and optimizer were built. Rank 0 prints one JSON line.
NVLink multicast must stay off: the caller exports NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1
NVSHMEM_DISABLE_NVLS=1 (scripts/gpu/experiments/multi_gpu.sh does); this script also sets them before NCCL starts.
"""
import argparse, json, os, sys, time
for k, v in (("NCCL_NVLS_ENABLE", "0"), ("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1"), ("NVSHMEM_DISABLE_NVLS", "1")):
    os.environ[k] = v
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_bench

def main(a):
    dist.init_process_group("nccl")
    rank, world, local = dist.get_rank(), dist.get_world_size(), int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local)
    hf_bench.CONFIG = a.config
    torch.manual_seed(0)   # the same init on every rank (DDP also broadcasts rank 0's weights)
    model = hf_bench.make_model(a.experts).train()
    ddp = DDP(model, device_ids=[local], find_unused_parameters=a.find_unused)
    opt = torch.optim.AdamW(ddp.parameters(), lr=1e-4, fused=True) if a.compile else torch.optim.AdamW(ddp.parameters(), lr=1e-4)
    run = torch.compile(ddp) if a.compile else ddp
    B, T, V = a.batch, a.seq, model.config.vocab_size
    gen = torch.Generator(device="cuda").manual_seed(1000 + rank)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times, warm_s = [], 0.0
    t_start = time.perf_counter()
    for step in range(a.warmup + a.steps):
        ids = torch.randint(0, V, (B, T), device="cuda", generator=gen)
        torch.cuda.synchronize(); t0 = time.perf_counter()
        out = run(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step(); opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
        elif step == a.warmup - 1:
            warm_s = time.perf_counter() - t_start
    stats = torch.tensor([sum(times) / len(times), torch.cuda.max_memory_allocated() / 2**30], device="cuda", dtype=torch.float64)
    dist.all_reduce(stats, op=dist.ReduceOp.MAX)
    loss = out.loss.detach().float()
    dist.all_reduce(loss)
    step_s, peak = stats.tolist()
    if rank == 0:
        tps = world * B * T / step_s
        name = os.path.splitext(os.path.basename(a.config))[0]
        print(json.dumps({"bench": "hf_ddp_train", "model": name, "experts": a.experts, "compile": a.compile, "world_size": world,
                          "batch": B, "global_batch": world * B, "seq": T, "tokens_per_s": round(tps), "tokens_per_s_per_gpu": round(tps / world, 1),
                          "step_ms": round(1000 * step_s, 1), "warmup_s": round(warm_s, 1), "peak_gib": round(peak, 2),
                          "loss": float(loss) / world}), flush=True)
    dist.destroy_process_group()

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--experts", default="grouped_mm")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--config", default="bench-moe-large.json", help="a bench config json (path, or a name in shared/bench)")
    p.add_argument("--compile", action="store_true", help="torch.compile(DDP model) + AdamW(fused=True)")
    p.add_argument("--batch", type=int, default=4, help="rows per GPU")
    p.add_argument("--seq", type=int, default=2048)
    p.add_argument("--find-unused", action="store_true", help="DDP find_unused_parameters (a parameter without a gradient in a step)")
    main(p.parse_args())
