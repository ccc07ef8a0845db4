#!/usr/bin/env bash
# Experiment: the real-size path at the Moonlight-16B-A3B shape (benchmarks/moonlight-16b/config.json: 27 layers,
# 64 routed experts top-6 + 2 shared, MLA kv rank 512, vocab 163,840; 15.96 B parameters) with random init, on the
# GPU machine. Steps, each logged to $OUT/<step>.log:
#   1. init:   posttrain init-checkpoint writes the bf16 checkpoint (shards + index) tensor by tensor (drawn on the GPU);
#   2. hf:     scripts/gpu/check_safetensors_hf.py: transformers loads it (no missing/unexpected keys, values equal);
#   3. logits: PostTrain (fp32, streamed load) vs transformers (fp32 and bf16) on 4 random sequences of 64 tokens;
#   4. sft-*:  a few SFT steps per mode (recipes/sft-16b-*.yaml): tokens/s, peak GPU and host memory from metrics.jsonl;
#              sft-full-sr trains everything on the GPU (bf16 moments, stochastic rounding), sft-full-sr-ema adds the
#              host EMA (its copy / wait seconds in the log), sft-full-sr-ema-skip with ema.skip_when_busy;
#              full fine-tuning with the host optimizer needs the host
#              RAM it names (skipped, saying so, when short);
#   5. grpo:   GRPO steps (recipes/grpo-16b-full-sr.yaml, char_variety reward): generation / reward / training seconds;
#              grpo-hostopt the same with recipes/grpo-16b-hostopt.yaml when the host has the RAM;
#   eval:      the eval recipe on the checkpoint (arithmetic, 64 problems, 2 samples, 64 new tokens);
#   peft:      a 2-step expert+attention LoRA run saved and loaded by peft onto the transformers model (key check);
#   6. gen:    the generation benchmark on the checkpoint: 64 sequences x 2,048 tokens, eager vs CUDA-graph decode
#              tokens/s, latent KV cache size, allocator peak.
# Then prints one table (summary.md). Needs ~40 GB free disk for the checkpoint (no run writes checkpoints:
# checkpoint.enabled=false). Usage: OUT=/tmp/big scripts/gpu/experiments/real_size_16b.sh [steps...]
set -uo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-/tmp/big16b}
CKPT=${CKPT:-$OUT/ckpt}
STEPS=${SFT_STEPS:-6}
mkdir -p "$OUT"
ARGS="$*"
want() { [ -z "$ARGS" ] || [[ " $ARGS " == *" $1 "* ]]; }   # no arguments: every step
host_gb() { awk '/MemAvailable/ {printf "%d", $2 / 1e6}' /proc/meminfo; }

if want init; then
  if [ ! -f "$CKPT/model.safetensors.index.json" ]; then
    /usr/bin/time -v scripts/gpu/run.sh init-checkpoint --config benchmarks/moonlight-16b/config.json --output "$CKPT" \
      --dtype bfloat16 --device cuda --seed 0 > "$OUT/init.log" 2>&1
    grep -E "wrote|Maximum resident|Elapsed" "$OUT/init.log"
    if [ ! -f "$CKPT/model.safetensors.index.json" ]; then   # drawing on the GPU failed: say why, draw on the CPU
      tail -5 "$OUT/init.log"; echo "init on cuda failed; drawing on the CPU"
      /usr/bin/time -v scripts/gpu/run.sh init-checkpoint --config benchmarks/moonlight-16b/config.json --output "$CKPT" \
        --dtype bfloat16 --device cpu --seed 0 > "$OUT/init-cpu.log" 2>&1
      grep -E "wrote|Maximum resident|Elapsed" "$OUT/init-cpu.log"
    fi
  fi
fi

if want hf; then
  timeout 1800 python3 scripts/gpu/check_safetensors_hf.py "$CKPT" --no-byte-check --device cuda > "$OUT/hf.log" 2>&1
  echo "hf check: exit $?"; tail -3 "$OUT/hf.log"
fi

if want logits; then
  python3 - "$OUT/ids.safetensors" <<'PY'
import sys, torch
from safetensors.torch import save_file
g = torch.Generator().manual_seed(0)
save_file({"input_ids": torch.randint(0, 163840, (4, 64), generator=g)}, sys.argv[1])
PY
  /usr/bin/time -v scripts/gpu/run.sh logits --model "$CKPT" --input "$OUT/ids.safetensors" --output "$OUT/pt_logits.safetensors" \
    --device cuda > "$OUT/logits.log" 2>&1
  grep -E "loaded|wrote|Maximum resident" "$OUT/logits.log"
  python3 - "$CKPT" "$OUT" >> "$OUT/logits.log" 2>&1 <<'PY'
import sys, torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
ckpt, out = sys.argv[1], sys.argv[2]
ids = load_file(f"{out}/ids.safetensors")["input_ids"].cuda()
pt = load_file(f"{out}/pt_logits.safetensors")["logits"].float().cuda()
for dtype in (torch.float32, torch.bfloat16):
    m = AutoModelForCausalLM.from_pretrained(ckpt, dtype=dtype).cuda().eval()
    with torch.no_grad():
        hf = m(ids).logits.float()
    d = (hf - pt).abs()
    agree = (hf.argmax(-1) == pt.argmax(-1)).float().mean().item()
    print(f"transformers {dtype} vs PostTrain fp32: max |diff| {d.max().item():.3e}, mean {d.mean().item():.3e}, "
          f"logit scale {pt.abs().mean().item():.3e}, argmax agreement {agree:.4f}")
    del m; torch.cuda.empty_cache()
PY
  tail -2 "$OUT/logits.log"
fi

common="model.path=$CKPT max_steps=$STEPS scheduler.warmup_steps=1 checkpoint.enabled=false logging.progress=plain logging.plain_interval_seconds=30"
sft() { # name recipe min_host_gb extra...
  local name=$1 recipe=$2 need=$3; shift 3
  if [ "$(host_gb)" -lt "$need" ]; then echo "$name: skipped: $(host_gb) GB host RAM available, the mode needs ~$need GB" | tee "$OUT/$name.log"; return; fi
  timeout ${SFT_TIMEOUT:-1500} scripts/gpu/run.sh run "recipes/$recipe" output_dir="$OUT/$name" $common data.max_seq_len=${SEQ:-2048} \
    data.batch_size=${BATCH:-2} gradient_accumulation_steps=1 "$@" > "$OUT/$name.log" 2>&1
  echo "$name: exit $?"; grep -E "memory plan|loaded|ema:|rror" "$OUT/$name.log" | head -5
}
want sft-lora-attn     && sft sft-lora-attn     sft-16b-lora-attn.yaml        40
want sft-lora-experts  && sft sft-lora-experts  sft-16b-lora-experts.yaml    40
want sft-full-sr       && sft sft-full-sr       sft-16b-full-sr.yaml          20
want sft-full-sr-ema   && sft sft-full-sr-ema   sft-16b-full-sr.yaml          110 'ema={decay: 0.999, every: 1}'
want sft-full-sr-ema-skip && sft sft-full-sr-ema-skip sft-16b-full-sr.yaml      110 'ema={decay: 0.999, every: 1, skip_when_busy: true}'
want sft-bf16moments   && sft sft-bf16moments   sft-16b-full-bf16moments.yaml 170
want sft-hostopt       && sft sft-hostopt       sft-16b-full-hostopt.yaml     235

if want peft; then
  # a saved expert+attention adapter (2 steps), loaded by peft on the transformers model: every key must match
  timeout ${SFT_TIMEOUT:-1500} scripts/gpu/run.sh run recipes/sft-16b-lora-experts.yaml output_dir="$OUT/peft-run" model.path=$CKPT max_steps=2 \
    data.max_seq_len=512 data.batch_size=1 gradient_accumulation_steps=1 logging.progress=plain > "$OUT/peft-run.log" 2>&1
  python3 - "$CKPT" "$OUT/peft-run/final" > "$OUT/peft.log" 2>&1 <<'PY'
import sys, torch
from peft import PeftModel
from safetensors import safe_open
from transformers import AutoModelForCausalLM
base = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.bfloat16)
model = PeftModel.from_pretrained(base, sys.argv[2])
with safe_open(f"{sys.argv[2]}/adapter_model.safetensors", "pt") as f:
    saved = set(f.keys())
have = {k for k in model.state_dict() if "lora_" in k}
norm = lambda k: k.replace(".default", "")
loaded = {norm(k) for k in have}
print(f"adapter tensors saved {len(saved)}, lora tensors in the peft model {len(have)}")
print("saved but not in the peft model:", sorted(saved - loaded)[:5])
print("in the peft model but not saved:", sorted(loaded - saved)[:5])
PY
  echo "peft: exit $?"; tail -3 "$OUT/peft.log"
fi

if want grpo; then
  timeout ${GRPO_TIMEOUT:-1500} scripts/gpu/run.sh run recipes/grpo-16b-full-sr.yaml output_dir="$OUT/grpo" $common max_steps=${GRPO_STEPS:-3} \
    ${GRPO_ARGS:-} > "$OUT/grpo.log" 2>&1
  echo "grpo: exit $?"; grep -E "memory plan|error" "$OUT/grpo.log" | head -3
fi

if want grpo-hostopt; then
  if [ "$(host_gb)" -lt 170 ]; then echo "grpo-hostopt: skipped: $(host_gb) GB host RAM available, needs ~170 GB" | tee "$OUT/grpo-hostopt.log"
  else
    timeout ${GRPO_TIMEOUT:-1500} scripts/gpu/run.sh run recipes/grpo-16b-hostopt.yaml output_dir="$OUT/grpo-hostopt" $common max_steps=${GRPO_STEPS:-3} \
      > "$OUT/grpo-hostopt.log" 2>&1
    echo "grpo-hostopt: exit $?"
  fi
fi

if want eval; then
  cat > "$OUT/eval16b.yaml" <<YAML
recipe: eval
output_dir: $OUT/eval
seed: 1
models: [m16b=$CKPT]
tasks: [arithmetic]
samples: 2
temperature: 0.8
max_new_tokens: 64
limit: 64
device: cuda
YAML
  /usr/bin/time -v timeout ${EVAL_TIMEOUT:-900} scripts/gpu/run.sh run "$OUT/eval16b.yaml" > "$OUT/eval.log" 2>&1
  echo "eval: exit $?"; grep -E "accuracy|Elapsed|Maximum resident|error" "$OUT/eval.log" | head -5
fi

if want gen; then
  # GEN_ARGS="--graph-only --no-profile": only the CUDA-graph decode is timed (an eager run of 2,016 steps adds minutes)
  POSTTRAIN_TOOL=PostTrain.Benchmarks.Generation timeout ${GEN_TIMEOUT:-1500} scripts/gpu/run.sh --model "$CKPT" --prompts 64 --prompt-len 32 \
    --new ${GEN_NEW:-2016} ${GEN_ARGS:-} > "$OUT/gen.log" 2>&1
  echo "gen: exit $?"; grep -E "^\| |latent KV|loaded" "$OUT/gen.log"
fi

python3 - "$OUT" <<'PY' | tee "$OUT/summary.md"
import json, os, statistics, sys
out = sys.argv[1]
print("| mode | steps | SFT tokens/s (median) | peak GPU GB | peak host GB | GRPO s/step: generation / reward / training |")
print("|---|---|---|---|---|---|")
for name in ["sft-full-sr", "sft-full-sr-ema", "sft-full-sr-ema-skip", "sft-bf16moments", "sft-hostopt", "sft-lora-attn", "sft-lora-experts", "grpo", "grpo-hostopt"]:
    f = os.path.join(out, name, "metrics.jsonl")
    if not os.path.exists(f):
        print(f"| {name} | not run (see {name}.log) | | | | |"); continue
    rows = [json.loads(l) for l in open(f)]
    med = lambda k: statistics.median([r[k] for r in rows[1:] or rows if k in r]) if any(k in r for r in rows) else float("nan")
    peak = lambda k: max([r.get(k, float("nan")) for r in rows])
    split = "" if not name.startswith("grpo") else f"{med('time/generation_s'):.1f} / {med('time/reward_s'):.1f} / {med('time/train_s'):.1f}"
    tps = "" if name.startswith("grpo") else f"{med('tokens_per_s'):.0f}"
    print(f"| {name} | {len(rows)} | {tps} | {peak('memory/gpu_peak_gb'):.1f} | {peak('memory/host_peak_gb'):.1f} | {split} |")
PY
