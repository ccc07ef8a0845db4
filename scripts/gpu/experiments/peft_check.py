"""Does peft load PostTrain's LoRA adapter the way PostTrain means it? (issue 16, names checked on real peft)

Input folder (made on the CPU by scripts/gpu/experiments/peft_stage.sh):
  base/      the base model as PostTrain saves it (Hugging Face deepseek_v3 checkpoint)
  adapter/   the LoRA adapter as PostTrain saves it (adapter_config.json + adapter_model.safetensors)
  merged/    `posttrain merge` of the two
  ids.safetensors, ours.safetensors   input_ids and PostTrain's logits of the merged model on them
Checks: every adapter tensor maps onto a peft LoRA parameter (no unexpected keys, no LoRA parameter left unloaded,
shapes equal); peft's logits with the adapter equal PostTrain's (fp32); peft's merge_and_unload weights equal
PostTrain's merged checkpoint.
"""
import json
import sys

import torch
from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

root = sys.argv[1]
torch.manual_seed(0)
base = AutoModelForCausalLM.from_pretrained(f"{root}/base", dtype=torch.float32).eval()
config = LoraConfig.from_pretrained(f"{root}/adapter")
config.inference_mode = True
model = get_peft_model(base, config).eval()
adapter = load_file(f"{root}/adapter/adapter_model.safetensors")
result = set_peft_model_state_dict(model, adapter)
lora_params = {k for k in model.state_dict() if "lora_" in k}
loaded = {k.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight") for k in adapter}
loaded |= {k.replace(".lora_A.", ".lora_A.default.").replace(".lora_B.", ".lora_B.default.") for k in adapter}
unloaded = sorted(k for k in lora_params if k not in loaded)
print(f"adapter tensors: {len(adapter)}; peft LoRA parameters: {len(lora_params)}")
print(f"unexpected keys: {len(result.unexpected_keys)} {result.unexpected_keys[:5]}")
print(f"peft LoRA parameters not in the adapter: {len(unloaded)} {unloaded[:5]}")
print("target modules:", sorted(config.target_modules) if config.target_modules else None)

ids = load_file(f"{root}/ids.safetensors")["input_ids"]
ours = load_file(f"{root}/ours.safetensors")["logits"]
with torch.no_grad():
    theirs = model(input_ids=ids).logits.float()
logit_diff = (theirs - ours).abs().max().item()
print(f"logits: max |peft - posttrain| = {logit_diff:.3e} (scale {ours.abs().max().item():.2f})")

merged = model.merge_and_unload()
ours_merged = {}
import glob
for f in sorted(glob.glob(f"{root}/merged/*.safetensors")):
    ours_merged.update(load_file(f))
sd = merged.state_dict()
common = [k for k in ours_merged if k in sd]
worst = max(((sd[k].float() - ours_merged[k].float()).abs().max().item(), k) for k in common) if common else (float("nan"), "")
print(f"merged weights: {len(common)} of {len(ours_merged)} PostTrain tensors found in peft's merged model; "
      f"max |diff| = {worst[0]:.3e} ({worst[1]})")
ok = not result.unexpected_keys and not unloaded and logit_diff < 1e-4 and worst[0] < 1e-5
print(json.dumps({"unexpected": len(result.unexpected_keys), "unloaded": len(unloaded), "logit_diff": logit_diff,
                  "merged_diff": worst[0], "ok": ok}))
sys.exit(0 if ok else 1)
