#!/usr/bin/env bash
# Issue 21 on a machine with several GPUs, in one device call (< 600 s at 8 GPUs with the default step counts):
#   scaling: PyTorch DDP (benchmarks/hf/hf_ddp_bench.py under torchrun, transformers DeepseekV3, grouped_mm experts,
#            eager at every size; torch.compile + fused AdamW at 1 and N GPUs) and PostTrain data parallel
#            (posttrain launch --nproc-per-node n bench-train, the plain step and, unless FAST=0, the fast path: each
#            rank's CUDA-graph step with the gradients all-reduced between its bodies) on bench-moe-large at n = 1, 2, 4, 8 (up to the GPUs present),
#            same batch per GPU (4 x 2048); the scaling-efficiency table (per-GPU rate at n / at 1).
#   ep:      expert parallel over all N GPUs from the same init, without and with device-limited routing (M = N/2):
#            the all-to-all share of the step, and the largest loss difference against the data-parallel run at N.
#   killed:  data-parallel bench-train on N GPUs, rank 1 killed (SIGKILL) mid-run: every rank must end within the
#            collective timeout (60 s) with a clear message; prints the launcher's exit code, the elapsed time and
#            the ranks still alive after it (must be none).
#   sft16b:  the 16B model (benchmarks/moonlight-16b/config.json, random init via posttrain init-checkpoint unless
#            CKPT holds one) trained by recipes/sft-16b-full-bf16moments.yaml with expert parallel over the N GPUs and
#            ZeRO 1, optimizer on the GPU (fp32 masters + moments: ~16 bytes x (15 B / N + 1 B) parameters per GPU:
#            N >= 4); tokens/s and peak memory from metrics.jsonl. Writing the 32 GB checkpoint takes minutes: run this
#            phase in its own call (`multi_gpu.sh sft16b`) if the first call ran out of time.
#   grpo16b: GRPO on the same 16B checkpoint (recipes/grpo-arith.yaml's arithmetic prompts and math reward, 2 x N prompts
#            x 8 samples of up to 256 tokens per step, 3 steps, dynamic sampling off: a random-init model scores 0, and
#            the step still samples, scores and trains every completion) with expert parallel over the N GPUs and ZeRO 1,
#            bf16 parameters and moments on the GPU (stochastic rounding); rollouts on each rank's full bf16 copy gathered from the EP group
#            (+32 GB per GPU: N >= 4, an H200 for N = 4). The GRPO step's time split (generation / reward / train),
#            tokens/s and peak memory per GPU from metrics.jsonl. SAVE16B=1: the last step also writes a checkpoint and
#            final/ (rank 0 streams the experts from its EP group: gathers, seconds and its process peak in the log).
# Usage (repository root, GPU machine, bundle from scripts/gpu/publish.sh in .dist/):
#   OUT=/tmp/out scripts/gpu/experiments/multi_gpu.sh [scaling] [ep] [killed] [sft16b] [grpo16b]   (no arguments: all)
# Env: NGPU (default: nvidia-smi's count), STEPS (5), WARMUP (2), PARAMS (bf16: PostTrain's parameters in bf16 as the
# DDP model's; fp32 for fp32 masters), BUDGET (540 s: no phase starts after it, each command is cut at it); for a dry
# run without GPUs: RUN=<posttrain> DEVICE=cpu NGPU=2 MODEL=micro-moe BATCH=2 SEQ=16 KILL_MODEL=micro-moe (no DDP there).
# Every phase writes $OUT/<phase>.log; every JSON row also goes to $OUT/multi_gpu.jsonl; tables: $OUT/multi_gpu.md.
set -uo pipefail
cd "$(dirname "$0")/../../.."
# NVLink multicast off for everything started here (posttrain launch sets it for its ranks too)
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1 POSTTRAIN_NO_CUDAGRAPH=1
out=${OUT:-/tmp/out}; mkdir -p "$out"
jsonl="$out/multi_gpu.jsonl"; : > "$jsonl"
run=${RUN:-scripts/gpu/run.sh}
N=${NGPU:-$(nvidia-smi --list-gpus | wc -l)}
STEPS=${STEPS:-5}; WARMUP=${WARMUP:-2}; PARAMS=${PARAMS:-bf16}; BUDGET=${BUDGET:-540}
MODEL=${MODEL:-bench-moe-large}; BATCH=${BATCH:-4}; SEQ=${SEQ:-2048}; DEVICE=${DEVICE:-cuda}   # (a CPU dry run: see the README)
ARGS="$*"
want() { [ -z "$ARGS" ] || [[ " $ARGS " == *" $1 "* ]]; }
left() { echo $(( BUDGET - SECONDS )); }
bounded() {  # runs a command cut at the budget; says so when it was cut
  local l; l=$(left); if [ "$l" -le 5 ]; then echo "skipped (budget of $BUDGET s spent): $*"; return 124; fi
  timeout --signal=TERM --kill-after=10 "$l" "$@"; local rc=$?
  [ $rc -eq 124 ] && echo "cut at the budget ($BUDGET s): $*"; return $rc
}
sizes=""; for n in 1 2 4 8; do [ $n -le "$N" ] && sizes="$sizes $n"; done
bench="--model $MODEL --device $DEVICE --batch $BATCH --seq $SEQ --steps $STEPS --warmup $WARMUP --params $PARAMS"
ddp="benchmarks/hf/hf_ddp_bench.py --config benchmarks/hf/$MODEL.json --experts grouped_mm --batch $BATCH --seq $SEQ --steps $STEPS --warmup $WARMUP"
rows() { grep -o '{"bench.*' | tee -a "$jsonl"; }   # JSON rows of a command's output into the results
echo "== $N GPUs: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | sort | uniq -c | xargs); sizes:$sizes; phases: ${ARGS:-all}"
$run --help > /dev/null 2>&1   # unpack the bundle once, outside the timed phases

if want scaling; then
  {
    for n in $sizes; do
      echo "== $n GPU(s): PostTrain data parallel"
      bounded $run launch --nproc-per-node $n --timeout 120 bench-train $bench 2>&1 | tee /dev/stderr | rows
      if [ "${FAST:-1}" = 1 ]; then   # each rank's captured fast step, gradients summed between its bodies
        echo "== $n GPU(s): PostTrain data parallel, fast path"
        POSTTRAIN_NO_CUDAGRAPH= bounded $run launch --nproc-per-node $n --timeout 120 bench-train $bench --fast-path on 2>&1 | tee /dev/stderr | rows
      fi
      echo "== $n GPU(s): DDP eager"
      bounded torchrun --standalone --nproc-per-node $n $ddp > "$out/ddp-$n.log" 2>&1
      if grep -q "find_unused_parameters" "$out/ddp-$n.log"; then
        echo "   (a parameter got no gradient: again with --find-unused)"; bounded torchrun --standalone --nproc-per-node $n $ddp --find-unused > "$out/ddp-$n.log" 2>&1
      fi
      rows < "$out/ddp-$n.log"; grep -m3 -i "error" "$out/ddp-$n.log"
      if [ $n -eq 1 ] || [ $n -eq "$N" ]; then
        echo "== $n GPU(s): DDP + torch.compile + fused AdamW"
        bounded torchrun --standalone --nproc-per-node $n $ddp --compile > "$out/ddp-compile-$n.log" 2>&1
        rows < "$out/ddp-compile-$n.log"; grep -m3 -i "error" "$out/ddp-compile-$n.log"
      fi
    done
  } 2>&1 | tee "$out/scaling.log"
fi

if want ep && [ "$N" -ge 2 ]; then
  M=$(( N / 2 ))
  {
    echo "== expert parallel over $N GPUs, no routing limit (losses must equal data parallel at $N from the same init)"
    grep -q "\"world_size\":$N,\"zero\":0,\"expert_parallel\":1" "$jsonl" || \
      bounded $run launch --nproc-per-node $N --timeout 120 bench-train $bench 2>&1 | rows   # the DP run to compare with
    bounded $run launch --nproc-per-node $N --timeout 120 bench-train $bench --expert-parallel $N 2>&1 | tee /dev/stderr | rows
    echo "== expert parallel over $N GPUs, device-limited routing: each token's experts on at most $M GPUs"
    bounded $run launch --nproc-per-node $N --timeout 120 bench-train $bench --expert-parallel $N --max-devices-per-token $M 2>&1 | tee /dev/stderr | rows
  } 2>&1 | tee "$out/ep.log"
fi

if want killed && [ "$N" -ge 2 ]; then
  {
    if [ "$(left)" -lt $(( ${KILL_AFTER:-40} + 100 )) ]; then echo "== killed rank: skipped ($(left) s of the budget left)"; else
    echo "== killed rank: $N ranks of data-parallel bench-train (bench-moe), rank 1 gets SIGKILL after ${KILL_AFTER:-40} s"
    start=$SECONDS
    $run launch --nproc-per-node $N --timeout 60 bench-train --model ${KILL_MODEL:-bench-moe} --device $DEVICE --steps 100000 --warmup 0 > "$out/killed-launch.log" 2>&1 &
    launcher=$!
    sleep ${KILL_AFTER:-40}
    ranks() {  # pid:rank of every posttrain rank process (Open MPI's rank variable in its environment)
      for p in /proc/[0-9]*; do
        tr '\0' ' ' < $p/cmdline 2>/dev/null | grep -q "bench-train" || continue
        r=$(tr '\0' '\n' < $p/environ 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p'); [ -n "$r" ] && echo "${p#/proc/}:$r"
      done
    }
    echo "ranks running: $(ranks | xargs)"
    victim=$(ranks | awk -F: '$2 == 1 {print $1; exit}')
    if [ -z "$victim" ]; then echo "no rank 1 process found (the run ended early?)"; tail -20 "$out/killed-launch.log"
    else
      killed_at=$SECONDS; kill -9 "$victim"; echo "killed rank 1 (pid $victim) at $((killed_at - start)) s"
      ( sleep 150; kill -TERM $launcher 2>/dev/null ) & guard=$!
      wait $launcher; rc=$?; kill $guard 2>/dev/null
      echo "launcher exit code $rc, $((SECONDS - killed_at)) s after the kill (collective timeout 60 s)"
      echo "rank processes left: $(ranks | xargs | sed 's/^$/none/')"
      grep -E "launch: |rank [0-9]+|MPI_ABORT|timed out|timeout" "$out/killed-launch.log" | head -20
    fi
    fi
  } 2>&1 | tee "$out/killed.log"
fi

checkpoint16b() {  # CKPT: the 16B checkpoint, written once (random init) unless it holds one
  CKPT=${CKPT:-/tmp/moonlight-16b}
  if [ ! -f "$CKPT/model.safetensors.index.json" ]; then
    echo "== writing the random-init 16B checkpoint ($CKPT)"
    bounded $run init-checkpoint --config benchmarks/moonlight-16b/config.json --output "$CKPT" --dtype bfloat16 --device cuda --seed 0 2>&1 | tail -2
  fi
}

if want sft16b; then
  {
    if [ "$N" -lt 4 ]; then echo "== 16B SFT: skipped: needs 4 or more GPUs for the optimizer on the GPU (~16 bytes per parameter)"
    else
      checkpoint16b
      echo "== 16B SFT, $N GPUs: expert parallel $N, ZeRO 1, AdamW on the GPU"
      bounded $run launch --nproc-per-node $N --timeout 300 run recipes/sft-16b-full-bf16moments.yaml model.path="$CKPT" output_dir=/tmp/sft16b-$N \
        max_steps=${SFT_STEPS:-4} checkpoint.enabled=false logging.progress=plain logging.tensorboard=false data.max_seq_len=2048 \
        data.batch_size=$((2 * N)) gradient_accumulation_steps=1 scheduler.warmup_steps=1 model.param_dtype=float32 \
        optimizer.offload=none optimizer.bf16_moments=false distributed.expert_parallel=$N distributed.zero_stage=1 > "$out/sft16b-run.log" 2>&1
      echo "exit $?"; grep -iE "error|model:|data parallel|expert" "$out/sft16b-run.log" | head -8
      [ -f /tmp/sft16b-$N/metrics.jsonl ] && cp /tmp/sft16b-$N/metrics.jsonl "$out/sft16b-metrics.jsonl" && tail -3 "$out/sft16b-metrics.jsonl"
    fi
  } 2>&1 | tee "$out/sft16b.log"
fi

if want grpo16b; then
  {
    if [ "$N" -lt 4 ]; then echo "== 16B GRPO: skipped: needs 4 or more GPUs (expert-parallel training state + a full bf16 copy per GPU)"
    else
      checkpoint16b
      echo "== 16B GRPO, $N GPUs: expert parallel $N, ZeRO 1, bf16 parameters and moments on the GPU"
      # SAVE16B=1: the last step writes a checkpoint (model + optimizer) and final/, rank 0 gathering one expert stack at
      # a time; the log's "expert parallel save:" lines give the gathers, seconds and rank 0's process peak (~128 GB on disk)
      save16b="checkpoint.enabled=false"; [ "${SAVE16B:-0}" = 1 ] && save16b="checkpoint.enabled=true checkpoint.every_n_steps=0"
      POSTTRAIN_NO_CUDAGRAPH= bounded $run launch --nproc-per-node $N --timeout 300 run recipes/grpo-arith.yaml model.path="$CKPT" \
        model.device=cuda model.dtype=bfloat16 model.param_dtype=bfloat16 optimizer.bf16_moments=true optimizer.stochastic_rounding=true output_dir=/tmp/grpo16b-$N \
        max_steps=${GRPO_STEPS:-3} eval=null $save16b samples_every_n_steps=0 logging.progress=plain \
        logging.tensorboard=false data.chat_template=plain grpo.prompts_per_step=$((2 * N)) grpo.num_generations=8 \
        grpo.max_completion_length=256 grpo.micro_batch_size=8 grpo.dynamic_sampling=false grpo.mu=1 grpo.beta=0 \
        distributed.expert_parallel=$N distributed.zero_stage=1 > "$out/grpo16b-run.log" 2>&1
      echo "exit $?"; grep -iE "error|model:|expert parallel|fast path" "$out/grpo16b-run.log" | head -12
      if [ -f /tmp/grpo16b-$N/metrics.jsonl ]; then
        cp /tmp/grpo16b-$N/metrics.jsonl "$out/grpo16b-metrics.jsonl"
        python3 - "$out/grpo16b-metrics.jsonl" "$N" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"time/generation_s"' in l]
n = int(sys.argv[2])
for r in rows:
    gen, rew, train = r["time/generation_s"], r["time/reward_s"], r["time/train_s"]
    print(f"step {r['step']}: generation {gen:.2f} s, reward {rew:.2f} s, train {train:.2f} s; "
          f"rollout {r['tokens_per_s/rollout'] / n:,.0f} tokens/s/GPU, train {r['tokens_per_s/train'] / n:,.0f} tokens/s/GPU; "
          f"peak {r.get('memory/gpu_peak_gb', float('nan')):.1f} GB/GPU")
PY
      fi
    fi
  } 2>&1 | tee "$out/grpo16b.log"
fi

python3 scripts/gpu/experiments/multi_gpu_table.py "$jsonl" | tee "$out/multi_gpu.md"
echo "== done in $SECONDS s"
