"""Saves a PostTrain checkpoint folder (model.safetensors + config.json) in bf16, as a Hugging Face release would be
(the router's correction bias stays fp32: a balancing state, not a weight). Usage: save_bf16.py SRC_DIR DST_DIR"""
import os
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file

src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
sd = load_file(src + "/model.safetensors")
save_file({k: (v.to(torch.bfloat16) if v.is_floating_point() and "e_score_correction_bias" not in k else v) for k, v in sd.items()},
          dst + "/model.safetensors", metadata={"format": "pt"})
shutil.copy(src + "/config.json", dst)
print("bf16 model:", os.path.getsize(dst + "/model.safetensors"), "bytes")
