#!/usr/bin/env bash
# Issue 18 GPU measurement: rollout/trainer mismatch and routing disagreement under bf16 CUDA-graph rollouts, three arms
# from the same random tiny-moe init (plain, R3, R3 + TIS), GRPO on a toy reward with variance (share of lowercase
# letters), 30 steps each. Run from the repository root on the GPU machine (bundle in .dist/, see scripts/gpu/run.sh);
# per-arm metrics.jsonl go to $OUT (benchmarks/results/r3-*.jsonl holds the H200 run of 2026-12-04).
set -uo pipefail
export PYTHONUNBUFFERED=1
w=/tmp/r3; rm -rf $w; mkdir -p $w/rewards
python3 -c "
import json
with open('$w/prompts.jsonl','w') as f:
    for i in range(256): f.write(json.dumps({'prompt': f'Q{i}: write some letters:'})+'\n')
"
cat > $w/rewards/lowercase.js <<'JS'
// share of lowercase ASCII letters in the completion
function reward(sample, options) {
  var s = sample.completion; if (s.length === 0) return 0; var n = 0;
  for (var i = 0; i < s.length; i++) { var c = s.charAt(i); if (c >= "a" && c <= "z") n++; }
  return n / s.length;
}
JS
cat > $w/grpo.yaml <<YAML
recipe: grpo
output_dir: $w/run
seed: 5
max_steps: 30
model: {path: tiny-moe, dtype: bfloat16, device: cuda}
data: {path: $w/prompts.jsonl, chat_template: plain}
rewards_dir: $w/rewards
rewards: [{name: lowercase, weight: 1.0}]
grpo: {prompts_per_step: 16, num_generations: 8, micro_batch_size: 64, max_completion_length: 48, temperature: 1.0}
samples_every_n_steps: 0
optimizer: {lr: 0.003, weight_decay: 0.0, betas: [0.9, 0.99]}
scheduler: {name: constant, warmup_steps: 0}
checkpoint: {every_n_steps: 0, keep_last: 1, resume: false}
logging: {tensorboard: false, progress: plain, plain_interval_seconds: 1000}
YAML
for arm in plain r3 r3tis; do
  case $arm in plain) f="grpo.routing_replay=false";; r3) f="grpo.routing_replay=true";; r3tis) f="grpo.routing_replay=true grpo.rollout_correction=tis";; esac
  s=$(date +%s.%N)
  scripts/gpu/run.sh run $w/grpo.yaml output_dir=$w/$arm $f > $w/$arm.log 2>&1
  echo "$arm exit $? in $(python3 -c "print(round($(date +%s.%N)-$s,1))") s"; tail -2 $w/$arm.log
  cp $w/$arm/metrics.jsonl $OUT/r3-$arm.jsonl 2>/dev/null
done
python3 - <<'PY'
import json
keys=["reward/mean","entropy","kl","mismatch/logprob_abs_mean","mismatch/logprob_abs_max","mismatch/k3_kl","mismatch/frac_abs_over_0.1","mismatch/routing_disagreement","mismatch/is_weight_mean","time/generation_s","time/train_s"]
for arm in ["plain","r3","r3tis"]:
    try: rows=[json.loads(l) for l in open(f"/tmp/r3/{arm}/metrics.jsonl")]
    except Exception as e: print(arm, "no metrics", e); continue
    def m(k, a, b): v=[r[k] for r in rows[a:b] if k in r and isinstance(r[k],(int,float))]; return sum(v)/len(v) if v else float('nan')
    print(arm, len(rows), "steps")
    for k in keys: print(f"  {k:34s} first10 {m(k,0,10):.5f}  last10 {m(k,-10,None):.5f}  all {m(k,0,None):.5f}")
PY
