"""Does peft load PostTrain's LoRA adapter the way PostTrain means it? (issue 16, names checked on real peft)

Input folder (made on the CPU by scripts/gpu/experiments/peft_stage.sh):
  base/      the base model as PostTrain saves it (Hugging Face deepseek_v3 checkpoint)
  adapter/   the LoRA adapter as PostTrain saves it (adapter_config.json + adapter_model.safetensors); with
             lora.peft_layout fused_experts (the default) the routed experts are LoRA on transformers 5's fused
             mlp.experts.gate_up_proj / down_proj and the dense / shared-expert MLPs are target_parameters
  merged/    `posttrain merge` of the two
  ids.safetensors, ours.safetensors   input_ids and PostTrain's logits of the merged model on them
Checks: every adapter tensor maps onto a peft LoRA parameter (no unexpected keys, no LoRA parameter left unloaded,
shapes equal); peft's logits with the adapter equal PostTrain's (fp32), loaded both through get_peft_model +
set_peft_model_state_dict and through PeftModel.from_pretrained; peft's merge_and_unload weights equal PostTrain's
merged checkpoint as transformers loads it (every tensor, fused experts included).
Usage: python peft_check.py <folder> [adapter subfolder, default adapter]
"""
import json
import sys

import peft
import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model, set_peft_model_state_dict
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

root = sys.argv[1]
adapter_dir = f"{root}/{sys.argv[2] if len(sys.argv) > 2 else 'adapter'}"
print(f"peft {peft.__version__}, transformers {transformers.__version__}, torch {torch.__version__}")
torch.manual_seed(0)


def load_base():
    return AutoModelForCausalLM.from_pretrained(f"{root}/base", dtype=torch.float32).eval()


config = LoraConfig.from_pretrained(adapter_dir)
config.inference_mode = True
model = get_peft_model(load_base(), config).eval()
adapter = load_file(f"{adapter_dir}/adapter_model.safetensors")
result = set_peft_model_state_dict(model, adapter)
config = model.peft_config["default"]
print("peft config after its transformers-5 conversion: target_modules",
      sorted(config.target_modules) if config.target_modules else config.target_modules,
      "target_parameters", sorted(config.target_parameters or []),
      "rank_pattern", config.rank_pattern, "alpha_pattern", config.alpha_pattern)
lora_params = {k: v for k, v in model.state_dict().items() if "lora_" in k}
named = {k.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight"): k
         for k in adapter}
unloaded = sorted(k for k in lora_params if k not in named)
mismatched = sorted(k for k, p in named.items() if k in lora_params and tuple(lora_params[k].shape) != tuple(adapter[p].shape))
print(f"adapter tensors: {len(adapter)}; peft LoRA parameters: {len(lora_params)}")
for k in sorted(lora_params):
    if ".mlp.experts." in k and ".layers.1." in k:
        print(f"  {k} {tuple(lora_params[k].shape)}")
print(f"unexpected keys: {len(result.unexpected_keys)} {result.unexpected_keys[:5]}")
print(f"peft LoRA parameters not in the adapter: {len(unloaded)} {unloaded[:5]}")
print(f"shape mismatches: {len(mismatched)} {mismatched[:5]}")

ids = load_file(f"{root}/ids.safetensors")["input_ids"]
ours = load_file(f"{root}/ours.safetensors")["logits"]
with torch.no_grad():
    theirs = model(input_ids=ids).logits.float()
    logit_diff = (theirs - ours).abs().max().item()
    pretrained = PeftModel.from_pretrained(load_base(), adapter_dir).eval()
    from_pretrained_diff = (pretrained(input_ids=ids).logits.float() - ours).abs().max().item()
print(f"logits: max |peft - posttrain| = {logit_diff:.3e} (scale {ours.abs().max().item():.2f}); "
      f"PeftModel.from_pretrained: {from_pretrained_diff:.3e}")

merged = model.merge_and_unload().state_dict()
ours_merged = AutoModelForCausalLM.from_pretrained(f"{root}/merged", dtype=torch.float32).state_dict()
missing = sorted(set(ours_merged) ^ set(merged))
worst = max((((merged[k].float() - ours_merged[k].float()).abs().max().item(), k) for k in ours_merged if k in merged),
            default=(float("nan"), ""))
print(f"merged weights: {len(ours_merged)} tensors of PostTrain's merged checkpoint (as transformers loads it), "
      f"{len(missing)} not in both {missing[:5]}; max |peft merge_and_unload - posttrain merge| = {worst[0]:.3e} ({worst[1]})")
ok = (not result.unexpected_keys and not unloaded and not mismatched and not missing and logit_diff < 1e-4
      and from_pretrained_diff < 1e-4 and worst[0] < 1e-5)
print(json.dumps({"unexpected": len(result.unexpected_keys), "unloaded": len(unloaded), "mismatched": len(mismatched),
                  "logit_diff": logit_diff, "from_pretrained_logit_diff": from_pretrained_diff, "merged_diff": worst[0],
                  "merged_not_in_both": len(missing), "ok": ok}))
sys.exit(0 if ok else 1)
