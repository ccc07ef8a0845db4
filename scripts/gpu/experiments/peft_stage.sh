#!/usr/bin/env bash
# Stages the inputs of peft_check.py on the CPU (no GPU needed): a micro deepseek_v3 base model (one SFT step from the
# built-in micro-moe), a LoRA adapter trained on it (sft-lora: attention + dense/shared-expert MLPs, 3 steps at a high
# rate so B is far from zero; extra key=value arguments go to that run, e.g. lora.routed_experts=true for the routed
# experts, lora.peft_layout=per_expert for transformers 4's names), `posttrain merge` of the two, input ids and
# PostTrain's logits of the merged model. Usage: scripts/gpu/experiments/peft_stage.sh <out-dir> [key=value ...]
# The check of peft's fused-expert layout: peft_stage.sh runs/peftfused lora.routed_experts=true here, then on the GPU
# machine python3 scripts/gpu/experiments/peft_check.py runs/peftfused (carry runs/peftfused).
set -euo pipefail
out=$1; shift
P=${POSTTRAIN:-src/PostTrain.Cli/bin/Debug/net10.0/posttrain}
w=$(mktemp -d)
common=(data.eval_path=null logging.tensorboard=false logging.progress=plain data.path=datasets/arithmetic/train.parquet)
$P run recipes/sft-quickstart.yaml model.path=micro-moe max_steps=1 scheduler.warmup_steps=0 output_dir=$w/base "${common[@]}" > $w/base.log
$P run recipes/sft-lora.yaml model.path=$w/base/final max_steps=3 scheduler.warmup_steps=0 optimizer.lr=0.05 lora.dropout=0.0 \
  output_dir=$w/lora "${common[@]}" "$@" > $w/lora.log
rm -rf "$out"; mkdir -p "$out"
cp -r $w/base/final "$out/base"; cp -r $w/lora/final "$out/adapter"
$P merge --adapter "$out/adapter" --output "$out/merged" > /dev/null
python3 - "$out/ids.safetensors" <<'PY'
import json, struct, sys, random
random.seed(7)
B, T, V = 2, 24, 256
ids = [random.randrange(V) for _ in range(B * T)]
data = struct.pack(f"<{len(ids)}q", *ids)
header = json.dumps({"input_ids": {"dtype": "I64", "shape": [B, T], "data_offsets": [0, len(data)]}}).encode()
header += b" " * (-len(header) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(header)) + header + data)
PY
$P logits --model "$out/merged" --input "$out/ids.safetensors" --output "$out/ours.safetensors" > /dev/null
rm -rf $w
du -sh "$out"
