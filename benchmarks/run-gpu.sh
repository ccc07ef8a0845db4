#!/usr/bin/env bash
# PostTrain's GPU benchmarks, each beside its Hugging Face baseline measured in the same run (shared/bench/bench-moe.json).
# On the build machine: scripts/gpu/publish.sh (makes .dist/posttrain-linux-x64.tar.xz). On the GPU machine, from the
# repository root (PyTorch 2.11 + transformers there, no .NET):
#   benchmarks/run-gpu.sh train      # training table, bench-moe + bench-moe-large: PostTrain eager / fast path vs transformers eager / compiled
#   benchmarks/run-gpu.sh recompute  # activation recompute none/selective/layer: peak memory + tokens/s, eager and fast path, both models
#   benchmarks/run-gpu.sh fp8        # FP8 self-check (native kernels too) + GEMM/expert tables, training tokens/s bf16 vs FP8, both models
#   benchmarks/run-gpu.sh quality    # FP8 vs BF16 SFT loss curves of the same tiny model, same init and data
#   benchmarks/run-gpu.sh grpo       # the shipped GRPO recipes: sft-quickstart -> grpo-arith, pipeline-countdown
#   benchmarks/run-gpu.sh generate   # rollout tokens/s: PostTrain engine vs HF generate (2 expert impls)
#   benchmarks/run-gpu.sh mtp        # greedy decode tokens/s, plain vs MTP speculative (eager/graph), trained MTP head + bench-moe
#   benchmarks/run-gpu.sh pipeline   # recipes/pipeline-gpu.yaml: SFT -> distill -> SFT -> RM -> GRPO -> eval, bench-moe size
#   benchmarks/run-gpu.sh multi      # several GPUs: DP scaling vs PyTorch DDP, expert parallel, killed rank, 16B SFT (multi_gpu.sh)
# Every result is one JSON line in $OUT/bench-<part>.jsonl (or ./bench-<part>.jsonl) and a table at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
part=${1:?usage: benchmarks/run-gpu.sh train|recompute|fp8|quality|grpo|generate|mtp|pipeline|multi}
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
    # One same-run table for bench-moe and bench-moe-large (benchmarks/hf/train_table.py): PostTrain eager, PostTrain
    # fast path (fp32 masters; bf16 parameters like the baseline), transformers eager (grouped_mm), transformers +
    # torch.compile + fused AdamW; peak = the caching allocator's peak for all; MFU against the matmul rate measured here.
    # TRAIN_MODELS="bench-moe" limits the models. TRAIN_ARMS picks the rows (default: all but selective):
    #   eager (plain step), fast (fp32 masters), fast-bf16, kernels-off (fast-bf16 without the training kernels), re-off
    #   (fast-bf16 with the experts' gathered input and SwiGLU output saved, as before RecomputedExperts), selective
    #   (fast-bf16 with selective recompute; bench-moe), no-graph (fast without the CUDA graph; bench-moe), hf, hf-compile.
    # TRAIN_QUICK=1 = TRAIN_ARMS="fast fast-bf16 hf-compile". The first fast row on bench-moe carries the 20-step
    # graph-vs-eager self-check.
    arms=${TRAIN_ARMS:-eager fast fast-bf16 kernels-off re-off no-graph hf hf-compile}
    [ "${TRAIN_QUICK:-0}" = 1 ] && arms="fast fast-bf16 hf-compile"
    arm() { [[ " $arms " == *" $1 "* ]]; }
    python3 benchmarks/hf/matmul_rate.py | tee -a "$log"
    for model in ${TRAIN_MODELS:-bench-moe bench-moe-large}; do
      if [ $model = bench-moe ]; then bt="--batch 8 --seq 1024"; check="--self-check ${SELF_CHECK_STEPS:-20}"; else bt="--batch 4 --seq 2048"; check=""; fi
      ptb() { pt bench-train --model $model $bt --device cuda "$@" 2>&1 | tee -a "$log"; }
      arm eager && ptb --fast-path off
      if arm fast; then ptb --fast-path on $check; check=""; fi
      if arm fast-bf16; then ptb --fast-path on --params bf16 $check; check=""; fi
      arm kernels-off && POSTTRAIN_TRAIN_KERNELS=0 ptb --fast-path on --params bf16
      arm re-off && POSTTRAIN_RECOMPUTED_EXPERTS=0 ptb --fast-path on --params bf16
      [ $model = bench-moe ] && arm selective && ptb --fast-path on --params bf16 --recompute selective
      [ $model = bench-moe ] && arm no-graph && ptb --fast-path on --no-graph
      arm hf && python3 benchmarks/hf/hf_bench.py train --config benchmarks/hf/$model.json --experts grouped_mm $bt 2>&1 | grep '^{\|rror' | tee -a "$log"
      arm hf-compile && python3 benchmarks/hf/hf_bench.py train --config benchmarks/hf/$model.json --experts grouped_mm --compile $bt 2>&1 | grep '^{\|rror' | tee -a "$log"
    done
    python3 benchmarks/hf/train_table.py "$log" | tee "$out/train-table.md"
    ;;
  recompute)
    # The same model, init and batches with each recompute mode, one fresh model per mode; bench-train prints a table
    # against none (tokens/s, step split, CUDA caching allocator peak, largest per-step loss difference) to stderr.
    for model in ${TRAIN_MODELS:-bench-moe bench-moe-large}; do
      if [ $model = bench-moe ]; then bt="--batch 8 --seq 1024"; else bt="--batch 4 --seq 2048"; fi
      for fp in off on; do
        pt bench-train --model $model $bt --device cuda --fast-path $fp --recompute none,selective,layer 2>&1 | tee -a "$log"
      done
    done
    ;;
  fp8)
    # Self-check (native FP8 kernels included), GEMM and expert tables, then training tokens/s bf16 vs FP8 on both
    # models, eager and fast path (FP8 takes the fast path only with the native kernels; FP8_FAST_MODES="on" keeps the
    # fast path rows only). FP8_PARTS=check,bench,train;
    # add "deep" for bench-moe-large's layers stacked FP8_DEEP_LAYERS deep (default 12, bf16 parameters, fast path):
    # there the LM head is no longer half the GEMM FLOPs (benchmarks/fp8-kernels/fp8_bound.py), so FP8 can pay.
    # Every part runs twice where it touches the grouped GEMMs: with the Triton cubins (POSTTRAIN_FP8_WGMMA=0), and with
    # each of FP8_WGMMA_MODES (default 1; the TMA + wgmma kernels of native/kernels/sm90a: 1 per tile, persistent, or auto,
    # PostTrain's default on sm_90: persistent where both weight dimensions are >= 1024, Triton below; the logs say
    # "wgmma off: why" where they cannot run).
    parts=${FP8_PARTS:-check,bench,train}
    for wg in 0 ${FP8_WGMMA_MODES:-1}; do
      [[ $parts == *check* ]] && POSTTRAIN_FP8_WGMMA=$wg POSTTRAIN_TOOL=fp8bench pt check 2>&1 | tail -80
      [[ $parts == *bench* ]] && POSTTRAIN_FP8_WGMMA=$wg POSTTRAIN_TOOL=fp8bench pt bench 2>&1 | tail -80
    done
    if [[ $parts == *train* ]]; then
      for model in ${FP8_TRAIN_MODELS:-bench-moe bench-moe-large}; do
        if [ $model = bench-moe ]; then bt="--batch 8 --seq 1024"; else bt="--batch 4 --seq 2048"; fi
        for fp in ${FP8_FAST_MODES:-off on}; do
          for dt in bfloat16 fp8; do   # fp8 here: the Triton grouped GEMMs (wgmma or Triton by width is the default on sm_90)
            ( export POSTTRAIN_FP8_WGMMA=0
              peak "posttrain_${model}_${dt}_fast_${fp}" pt bench-train --model $model $bt --dtype $dt --device cuda --fast-path $fp )
          done
          for wg in ${FP8_WGMMA_MODES:-1}; do   # 1: one CTA per tile; persistent: one per SM
            ( export POSTTRAIN_FP8_WGMMA=$wg
              peak "posttrain_${model}_fp8-wgmma-${wg}_fast_${fp}" pt bench-train --model $model $bt --dtype fp8 --device cuda --fast-path $fp )
          done
          # FP8 only in layers at least FP8_MIN_DIMS wide (model.fp8_min_dim; bench-moe-large only: bench-moe's widths
          # are all under 1024), on the first of FP8_WGMMA_MODES
          [ $model = bench-moe-large ] && for md in ${FP8_MIN_DIMS:-}; do
            ( export POSTTRAIN_FP8_WGMMA=${FP8_WGMMA_MODES%% *}
              peak "posttrain_${model}_fp8-min${md}_fast_${fp}" pt bench-train --model $model $bt --dtype fp8 --fp8-min-dim $md --device cuda --fast-path $fp )
          done
          # FP8 experts as three grouped linears instead of one function (the A/B of Fp8.ExpertsFp8), eager only
          [ $fp = off ] && ( export POSTTRAIN_FP8_FUSED_EXPERTS=0 POSTTRAIN_FP8_WGMMA=0
            peak "posttrain_${model}_fp8_3linears_fast_${fp}" pt bench-train --model $model $bt --dtype fp8 --device cuda --fast-path $fp )
        done
      done
    fi
    if [[ $parts == *deep* ]]; then
      # arms: bfloat16; fp8 (Triton GEMMs); fp8-wgmma (the first of FP8_WGMMA_MODES); fp8-min<D> (that, with --fp8-min-dim D)
      for arm in bfloat16 ${FP8_DEEP_ARMS:-fp8 fp8-wgmma}; do
        ( extra=(); dt=fp8
          case $arm in
            bfloat16) dt=bfloat16 ;;
            fp8) export POSTTRAIN_FP8_WGMMA=0 ;;
            fp8-wgmma) export POSTTRAIN_FP8_WGMMA=${FP8_WGMMA_MODES%% *} ;;
            fp8-min*) export POSTTRAIN_FP8_WGMMA=${FP8_WGMMA_MODES%% *}; extra=(--fp8-min-dim ${arm#fp8-min}) ;;
          esac
          peak "posttrain_bench-moe-large-${FP8_DEEP_LAYERS:-12}_${arm}_fast_on" pt bench-train --model bench-moe-large \
            --layers ${FP8_DEEP_LAYERS:-12} --batch 4 --seq 2048 --params bf16 --dtype $dt "${extra[@]}" --device cuda --fast-path on )
      done
    fi
    ;;
  quality)
    # FP8 vs BF16 from the same init on the same fresh text (benchmarks/fp8-quality/make_data.py: every step sees new
    # rows, loss on all tokens), plus a second BF16 run as the noise floor (GPU kernels are not bit-deterministic).
    # All three run at once on the GPU (the tiny model leaves it mostly idle).
    # QUALITY_DATA=arith (word problems) or markov (benchmarks/fp8-quality/make_markov.py: smooth loss curves).
    # QUALITY_MODEL=bench-moe-large (a 16B-A3B model's layer shapes; lr 3e-4, 300+ steps) for the issue's large-shape
    # run; QUALITY_LR overrides the learning rate.
    steps=${QUALITY_STEPS:-600}; data=${QUALITY_DATA:-arith}; qmodel=${QUALITY_MODEL:-tiny-moe}
    # (bench-moe-large: no checkpoints; three with optimizer state filled the GPU machine's 64 GB disk on 2026-12-06)
    if [ "$qmodel" = tiny-moe ]; then qlr=${QUALITY_LR:-3e-3}; qckpt=true; else qlr=${QUALITY_LR:-3e-4}; qckpt=false; fi
    mkdir -p /tmp/qdata
    if [ "$data" = markov ]; then python3 benchmarks/fp8-quality/make_markov.py /tmp/qdata 6000; fmt=text
    else python3 benchmarks/fp8-quality/make_data.py /tmp/qdata; fmt=prompt_completion; fi
    for run in bfloat16:bf16 fp8:fp8 bfloat16:bf16-repeat; do
      d=${run%%:*}; name=${run##*:}
      pt run recipes/sft-quickstart.yaml output_dir=/tmp/q-$name model.path=$qmodel optimizer.lr=$qlr scheduler.warmup_steps=15 scheduler.min_lr=$(python3 -c "print($qlr / 10)") model.dtype=$d model.device=cuda max_steps=$steps data.format=$fmt \
        data.path=/tmp/qdata/train.jsonl data.eval_path=/tmp/qdata/test.jsonl data.train_on=all data.eval_every_n_steps=200 \
        data.eval_batches=25 logging.progress=plain logging.plain_interval_seconds=60 checkpoint.every_n_steps=0 checkpoint.enabled=$qckpt > /tmp/q-$name.log 2>&1 &
      # a model of real layer shapes takes the GPU (and ~30 GB of it) alone: one run at a time
      [ "$qmodel" = tiny-moe ] || wait
    done
    wait
    tail -3 /tmp/q-*.log
    python3 - "$steps" <<'PY' | tee -a "$log"
import json, sys
steps = int(sys.argv[1])
def read(name):
    rows = [json.loads(l) for l in open(f"/tmp/q-{name}/metrics.jsonl")]
    loss = [r["loss"] for r in rows if "loss" in r]
    ev = [r["eval_loss"] for r in rows if "eval_loss" in r]
    return {"train_loss_mean_last100": sum(loss[-100:]) / 100, "final_eval_loss": ev[-1], "steps": len(loss)}
res = {n: read(n) for n in ("bf16", "fp8", "bf16-repeat")}
import os
for n, r in res.items(): print(json.dumps({"bench": "fp8_quality", "data": os.environ.get("QUALITY_DATA", "arith"), "model": os.environ.get("QUALITY_MODEL", "tiny-moe"), "run": n, **r}))
for other in ("fp8", "bf16-repeat"):
    for k in ("train_loss_mean_last100", "final_eval_loss"):
        rel = (res[other][k] - res["bf16"][k]) / res["bf16"][k]
        print(json.dumps({"bench": "fp8_quality_ratio", "run": other, "vs": "bf16", "metric": k, "relative_difference": rel,
                          "within_0.25pct": abs(rel) <= 0.0025}))
PY
    # the trained checkpoint loads in transformers, and gives the same logits as PostTrain (the tiny model's run only:
    # bench-moe-large's 2.5 B parameters in fp32 on the CPU would take the rest of a device call)
    if [ "$qmodel" = tiny-moe ]; then
    python3 scripts/gpu/check_safetensors_hf.py /tmp/q-bf16/final --no-byte-check 2>&1 | tail -4
    python3 - <<'PY' | tee -a "$log"
import json, torch
from safetensors.torch import save_file, load_file
torch.manual_seed(0)
save_file({"input_ids": torch.randint(3, 256, (2, 48))}, "/tmp/ids.safetensors")
PY
    pt logits --model /tmp/q-bf16/final --input /tmp/ids.safetensors --output /tmp/pt-logits.safetensors --device cuda
    python3 - <<'PY' | tee -a "$log"
import json, torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
m = AutoModelForCausalLM.from_pretrained("/tmp/q-bf16/final", dtype=torch.float32).eval()
ids = load_file("/tmp/ids.safetensors")["input_ids"]
with torch.no_grad(): hf = m(input_ids=ids).logits
pt = load_file("/tmp/pt-logits.safetensors")["logits"]
print(json.dumps({"bench": "hf_logits_on_trained_sft_model", "max_abs_diff": float((hf - pt).abs().max()), "logit_absmax": float(hf.abs().max())}))
PY
    fi
    ;;
  grpo)
    # The shipped GRPO recipes as a user runs them, on the GPU, concurrently: arithmetic = recipes/sft-quickstart.yaml
    # (from models/tiny-moe-arith-base) -> recipes/grpo-arith.yaml; Countdown = recipes/pipeline-countdown.yaml (from
    # models/tiny-moe-countdown-base: SFT -> GRPO -> eval). Held-out accuracy before, every 30 steps and after.
    pt --help > /dev/null   # unpack the bundle and build the CUDA-graph library once, before the parallel runs
    ( timeout ${SFT_TIMEOUT:-120} scripts/gpu/run.sh run recipes/sft-quickstart.yaml output_dir=/tmp/g-sft model.device=cuda \
        checkpoint.every_n_steps=0 logging.progress=plain logging.plain_interval_seconds=60 > /tmp/g-sft.log 2>&1
      timeout ${GRPO_TIMEOUT:-400} scripts/gpu/run.sh run recipes/grpo-arith.yaml output_dir=/tmp/g-arith model.path=/tmp/g-sft/final \
        model.device=cuda checkpoint.every_n_steps=0 logging.progress=plain logging.plain_interval_seconds=60 > /tmp/g-arith.log 2>&1 ) &
    [ -d models/tiny-moe-countdown-base ] && ( sed 's/^  device: auto$/  device: cuda/' recipes/grpo-countdown.yaml > /tmp/grpo-countdown-cuda.yaml
      sed 's|recipes/grpo-countdown.yaml|/tmp/grpo-countdown-cuda.yaml|' recipes/pipeline-countdown.yaml > /tmp/pipeline-countdown-cuda.yaml
      timeout ${PIPELINE_TIMEOUT:-540} scripts/gpu/run.sh run /tmp/pipeline-countdown-cuda.yaml output_dir=/tmp/g-countdown > /tmp/g-countdown.log 2>&1 ) &
    wait
    grep -h "eval loss" /tmp/g-sft.log | tail -2
    grep -h "held-out\|rror" /tmp/g-arith.log /tmp/g-countdown.log 2>/dev/null | head -30
    mkdir -p "$out/grpo"; cp /tmp/g-*.log "$out/grpo/" 2>/dev/null
    for d in /tmp/g-arith /tmp/g-countdown/grpo; do [ -f $d/metrics.jsonl ] && cp $d/metrics.jsonl "$out/grpo/$(echo $d | tr / _).metrics.jsonl"; done
    cp /tmp/g-countdown/pipeline.md "$out/grpo/countdown-pipeline.md" 2>/dev/null; cp /tmp/g-countdown/eval/report.md "$out/grpo/countdown-eval.md" 2>/dev/null
    ;;
  generate)
    POSTTRAIN_TOOL=PostTrain.Benchmarks.Generation scripts/gpu/run.sh 2>&1 | tee "$out/posttrain-generate.txt" | tail -40
    peak hf_generate_default python3 benchmarks/hf/hf_bench.py generate --experts default
    peak hf_generate_grouped_mm python3 benchmarks/hf/hf_bench.py generate --experts grouped_mm
    ;;
  mtp)
    # MTP speculative greedy decoding against plain greedy, eager and CUDA graph, same run: the tiny model whose MTP head
    # was trained (mtp_lambda 0.3) on the arithmetic text it is prompted with, then bench-moe (random MTP head: the
    # cost of a step whose drafts are mostly rejected)
    POSTTRAIN_TOOL=PostTrain.Benchmarks.Generation scripts/gpu/run.sh --spec --model models/tiny-moe-arith-base --prompt-source arith \
      --prompts 64 --new 256 2>&1 | tee "$out/posttrain-mtp-arith.txt" | tail -24
    POSTTRAIN_TOOL=PostTrain.Benchmarks.Generation scripts/gpu/run.sh --spec 2>&1 | tee "$out/posttrain-mtp-bench-moe.txt" | tail -24
    ;;
  multi)
    # scripts/gpu/experiments/multi_gpu.sh: every phase (its rows also land in $log; tables in $out/multi_gpu.md)
    OUT="$out" scripts/gpu/experiments/multi_gpu.sh
    cp "$out/multi_gpu.jsonl" "$log" 2>/dev/null
    ;;
  pipeline)
    # recipes/pipeline-gpu.yaml: SFT -> distill -> SFT -> RM -> GRPO -> eval at the bench model's size, one summary
    timeout ${PIPELINE_TIMEOUT:-560} scripts/gpu/run.sh run recipes/pipeline-gpu.yaml output_dir=/tmp/pg 2>&1 \
      | grep -E "^== stage|done in|eval loss|held-out|kept|pass rate|accuracy|error|McNemar" | tee "$out/pipeline.txt"
    cp /tmp/pg/pipeline.md "$out/" 2>/dev/null; cp /tmp/pg/eval/report.md "$out/pipeline-eval.md" 2>/dev/null
    cp /tmp/pg/eval/report.html "$out/pipeline-eval.html" 2>/dev/null; cp /tmp/pg/distill/stats.json "$out/distill-stats.json" 2>/dev/null
    ;;
esac
echo "== results ($log)"
cat "$log"
