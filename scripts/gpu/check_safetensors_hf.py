#!/usr/bin/env python3
"""Checks that a checkpoint directory written by PostTrain (SafeTensors.Save / SaveSharded /
SaveDirectory) is read correctly by the Python reference tools. Run on the GPU machine, where
torch, safetensors and transformers are installed:

    python3 scripts/gpu/check_safetensors_hf.py DIR [--no-byte-check] [--device cuda]

Checks, failing with a message naming file and tensor:
  1. model.safetensors, or model.safetensors.index.json + every shard it names exists;
     the index text equals json.dumps(index, indent=2, sort_keys=True) + "\\n" (as transformers
     writes it) and metadata.total_size equals the sum of the tensors' byte sizes;
  2. every shard opens with safetensors.safe_open, has __metadata__ {"format": "pt"}, a header
     length that is a multiple of 8, and every tensor loads (get_tensor and load_file agree);
  3. unless --no-byte-check: re-saving each shard with safetensors.torch.save_file gives the
     very same bytes (PostTrain claims byte-identical output);
  4. if config.json exists: AutoModelForCausalLM.from_pretrained loads the directory with no
     missing, unexpected or mis-shaped keys, and every parameter whose name is also in the files
     equals the stored tensor.
Prints a summary and exits non-zero on the first failure.
"""
import argparse
import json
import os
import sys
import tempfile

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def raw(t):
    """The tensor's bytes as a flat uint8 tensor (bit-exact comparison, NaN-safe, any dtype)."""
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8)


def shard_files(d):
    if os.path.exists(os.path.join(d, SINGLE)):
        return [SINGLE], None
    path = os.path.join(d, INDEX)
    if not os.path.exists(path):
        fail(f"{d}: neither {SINGLE} nor {INDEX}")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    index = json.loads(text)
    expected_text = json.dumps(index, indent=2, sort_keys=True) + "\n"
    if text != expected_text:
        fail(f"{path}: text differs from json.dumps(index, indent=2, sort_keys=True) + newline")
    files = sorted(set(index["weight_map"].values()))
    for name, shard in index["weight_map"].items():
        if not os.path.exists(os.path.join(d, shard)):
            fail(f"{path}: tensor '{name}' points to missing file '{shard}'")
    return files, index


def check_shard(path, byte_check):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
    if n % 8 != 0:
        fail(f"{path}: header length {n} is not a multiple of 8")
    tensors = {}
    with safe_open(path, framework="pt", device="cpu") as f:
        meta = f.metadata()
        if meta is None or meta.get("format") != "pt":
            fail(f"{path}: __metadata__ is {meta}, expected format=pt")
        for name in f.keys():
            try:
                tensors[name] = f.get_tensor(name)
            except Exception as e:  # noqa: BLE001 - report any loader error with the tensor name
                fail(f"{path}: tensor '{name}' does not load: {e}")
    whole = load_file(path)
    for name, t in tensors.items():
        w = whole[name]
        if w.dtype != t.dtype or w.shape != t.shape or not torch.equal(raw(w), raw(t)):
            fail(f"{path}: tensor '{name}' differs between load_file and safe_open")
    if byte_check and len(meta) > 1:
        print(f"{path}: {len(meta)} metadata keys; Rust safetensors orders them by hash, byte check skipped")
    elif byte_check:
        with tempfile.TemporaryDirectory() as tmp:
            resaved = os.path.join(tmp, "resaved.safetensors")
            save_file(tensors, resaved, metadata=meta)
            with open(path, "rb") as a, open(resaved, "rb") as b:
                if a.read() != b.read():
                    fail(f"{path}: safetensors.save_file of the same tensors writes different bytes")
    return tensors, meta


def check_transformers(d, stored, device):
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(d)
    model, info = AutoModelForCausalLM.from_pretrained(
        d, config=config, dtype="auto", output_loading_info=True
    )
    ignorable = ("rotary_emb.inv_freq",)
    missing = [k for k in info.get("missing_keys", []) if not k.endswith(ignorable)]
    # transformers' DeepseekV3 has no multi-token-prediction module: it ignores the MTP layers stored at
    # model.layers.{num_hidden_layers + k} (as it ignores layer 61 of the released DeepSeek-V3).
    mtp = tuple(f"model.layers.{i}." for i in range(config.num_hidden_layers, config.num_hidden_layers + 8))
    unexpected = [k for k in info.get("unexpected_keys", []) if not k.endswith(ignorable) and not k.startswith(mtp)]
    mismatched = info.get("mismatched_keys", [])
    if missing or unexpected or mismatched:
        fail(f"{d}: transformers ({type(model).__name__}) missing={missing[:20]} unexpected={unexpected[:20]} "
             f"mismatched={mismatched[:20]} (counts {len(missing)}/{len(unexpected)}/{len(mismatched)})")
    model.to(device)
    state = model.state_dict()
    compared = 0
    for name, t in stored.items():
        if name in state:
            if state[name].shape != t.shape:
                fail(f"{d}: tensor '{name}' has shape {tuple(t.shape)} on disk, {tuple(state[name].shape)} in the model")
            if not torch.equal(raw(state[name]), raw(t.to(state[name].dtype))):  # as transformers casts on load
                fail(f"{d}: tensor '{name}' differs between the file and the loaded {type(model).__name__}")
            compared += 1
    print(f"transformers: {type(model).__name__} loaded; {compared} of {len(stored)} stored tensors compared "
          f"equal by name ({len(stored) - compared} renamed/fused by transformers' loading, not compared)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--no-byte-check", action="store_true", help="skip the byte-identical re-save check")
    ap.add_argument("--device", default="cpu", help="device to move the transformers model to (e.g. cuda)")
    args = ap.parse_args()

    files, index = shard_files(args.dir)
    stored, total = {}, 0
    for shard in files:
        path = os.path.join(args.dir, shard)
        tensors, _ = check_shard(path, not args.no_byte_check)
        if index is not None:
            listed = {name for name, s in index["weight_map"].items() if s == shard}
            for name in sorted(listed - tensors.keys()):
                fail(f"{path}: tensor '{name}' listed in {INDEX} but absent from the shard")
            stored.update({name: t for name, t in tensors.items() if name in listed})
        else:
            stored.update(tensors)
        total += sum(t.numel() * t.element_size() for t in tensors.values())
    if index is not None and index["metadata"]["total_size"] != total:
        fail(f"{INDEX}: metadata.total_size {index['metadata']['total_size']} != {total} bytes of tensors")
    dtypes = sorted({str(t.dtype) for t in stored.values()})
    print(f"safetensors: {len(files)} file(s), {len(stored)} tensors, {total} bytes, dtypes {dtypes}: all load"
          + ("" if args.no_byte_check else "; re-saved bytes identical"))

    if os.path.exists(os.path.join(args.dir, "config.json")):
        check_transformers(args.dir, stored, args.device)
    else:
        print("no config.json: transformers check skipped")
    print("OK")


if __name__ == "__main__":
    main()
