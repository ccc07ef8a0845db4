#!/usr/bin/env bash
# PostTrain's GPU benchmarks, each beside its Hugging Face baseline measured in the same run (shared/bench/bench-moe.json).
# On the build machine: scripts/gpu/publish.sh (makes .dist/posttrain-linux-x64.tar.xz). On the GPU machine, from the
# repository root (PyTorch 2.11 + transformers there, no .NET):
#   benchmarks/run-gpu.sh train      # FP8 GEMM check + TFLOP/s, training tokens/s: PostTrain bf16 / FP8 vs HF (2 expert impls)
#   benchmarks/run-gpu.sh quality    # FP8 vs BF16 SFT loss curves of the same tiny model, same init and data
#   benchmarks/run-gpu.sh generate   # rollout tokens/s: PostTrain engine vs HF generate (2 expert impls)
#   benchmarks/run-gpu.sh pipeline   # SFT (longer than the CPU quickstart) -> GRPO on arithmetic -> eval report of both
# Every result is one JSON line in $OUT/bench-<part>.jsonl (or ./bench-<part>.jsonl) and a table at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
part=${1:?usage: benchmarks/run-gpu.sh train|quality|generate|pipeline}
out=${OUT:-.}
log="$out/bench-$part.jsonl"; : > "$log"
pt() { scripts/gpu/run.sh "$@"; }
peak() {  # runs a command while sampling GPU memory; appends {"peak_gpu_mib": N} for it
  local name=$1; shift
  ( while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; sleep 0.2; done ) > /tmp/mem.$$ & local sampler=$!
  "$@" | tee -a "$log"
  kill $sampler 2>/dev/null; wait $sampler 2>/dev/null
  echo "{\"bench\": \"peak\", \"name\": \"$name\", \"peak_gpu_mib\": $(sort -n /tmp/mem.$$ | tail -1)}" | tee -a "$log"
}
export PYTHONUNBUFFERED=1
case "$part" in
  train)
    POSTTRAIN_TOOL=fp8bench pt check 2>&1 | tail -40
    POSTTRAIN_TOOL=fp8bench pt bench 2>&1 | tail -60
    peak posttrain_bf16 pt bench-train --precision bf16 --device cuda
    peak posttrain_fp8 pt bench-train --precision fp8 --device cuda
    peak hf_default python3 benchmarks/hf/hf_bench.py train --experts default
    peak hf_grouped_mm python3 benchmarks/hf/hf_bench.py train --experts grouped_mm
    ;;
  quality)
    for d in bfloat16 fp8; do
      pt run recipes/sft-quickstart.yaml output_dir=/tmp/q-$d model.dtype=$d model.device=cuda max_steps=400 \
        data.eval_every_n_steps=100 logging.progress=plain logging.plain_interval_seconds=30 checkpoint.every_n_steps=0 | tail -8
      python3 - "$d" <<'PY' | tee -a "$log"
import json, sys
d = sys.argv[1]
rows = [json.loads(l) for l in open(f"/tmp/q-{d}/metrics.jsonl")]
loss = [r["loss"] for r in rows if "loss" in r]
ev = [r["eval_loss"] for r in rows if "eval_loss" in r]
print(json.dumps({"bench": "fp8_quality", "dtype": d, "final_train_loss_mean_last50": sum(loss[-50:]) / 50, "final_eval_loss": ev[-1], "steps": len(loss)}))
PY
    done
    # the trained checkpoint loads in transformers, and gives the same logits as PostTrain
    python3 scripts/gpu/check_safetensors_hf.py /tmp/q-bfloat16/final --no-byte-check 2>&1 | tail -4
    python3 - <<'PY' | tee -a "$log"
import json, torch
from safetensors.torch import save_file, load_file
torch.manual_seed(0)
save_file({"input_ids": torch.randint(3, 256, (2, 48))}, "/tmp/ids.safetensors")
PY
    pt logits --model /tmp/q-bfloat16/final --input /tmp/ids.safetensors --output /tmp/pt-logits.safetensors --device cuda
    python3 - <<'PY' | tee -a "$log"
import json, torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
m = AutoModelForCausalLM.from_pretrained("/tmp/q-bfloat16/final", dtype=torch.float32).eval()
ids = load_file("/tmp/ids.safetensors")["input_ids"]
with torch.no_grad(): hf = m(input_ids=ids).logits
pt = load_file("/tmp/pt-logits.safetensors")["logits"]
print(json.dumps({"bench": "hf_logits_on_trained_sft_model", "max_abs_diff": float((hf - pt).abs().max()), "logit_absmax": float(hf.abs().max())}))
PY
    ;;
  generate)
    POSTTRAIN_TOOL=PostTrain.Benchmarks.Generation scripts/gpu/run.sh 2>&1 | tee "$out/posttrain-generate.txt" | tail -40
    peak hf_generate_default python3 benchmarks/hf/hf_bench.py generate --experts default
    peak hf_generate_grouped_mm python3 benchmarks/hf/hf_bench.py generate --experts grouped_mm
    ;;
  pipeline)
    steps=${SFT_STEPS:-800}
    timeout 300 scripts/gpu/run.sh run recipes/sft-quickstart.yaml output_dir=/tmp/p-sft model.device=cuda model.dtype=bfloat16 \
      max_steps=$steps data.batch_size=16 data.eval_every_n_steps=200 checkpoint.every_n_steps=0 logging.progress=plain \
      logging.plain_interval_seconds=60 2>&1 | grep -E "eval loss|final model|error" | tee -a "$out/pipeline.txt"
    timeout 200 scripts/gpu/run.sh run recipes/grpo-arith.yaml output_dir=/tmp/p-grpo model.path=/tmp/p-sft/final model.device=cuda \
      max_steps=${GRPO_STEPS:-40} logging.progress=plain logging.plain_interval_seconds=60 2>&1 | grep -E "held-out|reward|error" | tee -a "$out/pipeline.txt"
    timeout 150 scripts/gpu/run.sh eval --model sft=/tmp/p-sft/final --model grpo=/tmp/p-grpo/final --task arithmetic --limit 200 \
      --samples 4 --max-new-tokens 96 --device cuda --output /tmp/p-eval --metrics /tmp/p-grpo 2>&1 | tail -4 | tee -a "$out/pipeline.txt"
    cp /tmp/p-eval/report.html /tmp/p-eval/report.md "$out/" 2>/dev/null
    ;;
esac
echo "== results ($log)"
cat "$log"
