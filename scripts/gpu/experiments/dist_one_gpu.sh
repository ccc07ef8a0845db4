#!/usr/bin/env bash
# Issue 17 on one GPU (no scaling claims): the NCCL engine with one process (every collective exact on CUDA tensors,
# all-reduce bandwidth), two ranks sharing the GPU (auto falls back to Open MPI staging through the host; nccl is a
# clear error, as NCCL refuses two ranks on one GPU), and SFT on CUDA as one process vs two ranks (losses must agree).
# Optional: PEFT loads PostTrain's LoRA adapter (issue 16) when .gpu-stage/peft holds the artifacts (scripts/gpu/
# experiments/peft_check.py). Run from the repository root on the GPU machine; logs go to $OUT.
set -uo pipefail
export POSTTRAIN_NO_CUDAGRAPH=1   # not needed here: skip building the CUDA-graph library
export PYTHONUNBUFFERED=1
out=${OUT:-/tmp/out}; mkdir -p "$out"
run=scripts/gpu/run.sh
w=/tmp/dist1; rm -rf $w; mkdir -p $w
{
echo "== nvidia-smi"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "== 1 process, NCCL engine"
$run dist-check --device cuda --backend nccl --bandwidth-mb 256; echo "exit $?"
if [ -d .gpu-stage/peft ]; then echo "== PEFT check"; python3 scripts/gpu/experiments/peft_check.py .gpu-stage/peft; echo "exit $?"; fi
echo "== 2 ranks on one GPU, auto engine"
$run launch --nproc-per-node 2 dist-check --device cuda --bandwidth-mb 64; echo "exit $?"
common=(max_steps=5 model.path=micro-moe model.device=cuda model.dtype=float32 scheduler.warmup_steps=1 data.eval_path=null
        logging.tensorboard=false logging.progress=plain data.path=datasets/arithmetic/train.parquet)
echo "== SFT on CUDA: 1 process"
$run run recipes/sft-quickstart.yaml "${common[@]}" output_dir=$w/one > $w/one.log 2>&1; echo "exit $?"; tail -3 $w/one.log
echo "== SFT on CUDA: 2 ranks (MPI staging)"
$run launch --nproc-per-node 2 run recipes/sft-quickstart.yaml "${common[@]}" output_dir=$w/two > $w/two.log 2>&1; echo "exit $?"; tail -3 $w/two.log
python3 - <<PY
import json
def losses(d):
    by_step = {}
    for l in open(d + "/metrics.jsonl"):
        e = json.loads(l)
        if "loss" in e: by_step[e["step"]] = e["loss"]
    return [by_step[k] for k in sorted(by_step)]
a, b = losses("$w/one"), losses("$w/two")
print("1 process:", a); print("2 ranks:  ", b)
print("max relative difference:", max(abs(x - y) / abs(x) for x, y in zip(a, b)) if a and len(a) == len(b) else "n/a")
PY
echo "== 2 ranks on one GPU, nccl asked (expected: clear error, exit 2)"
$run launch --nproc-per-node 2 dist-check --device cuda --backend nccl; echo "exit $?"
} 2>&1 | tee "$out/dist_one_gpu.log"
