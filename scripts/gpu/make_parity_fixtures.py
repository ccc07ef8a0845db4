"""Makes tiny random DeepseekV3ForCausalLM checkpoints and reference outputs with Hugging Face transformers.

Run on the GPU machine (transformers 5.17, torch 2.11):  python3 scripts/gpu/make_parity_fixtures.py OUT_DIR
For every case it writes OUT_DIR/<case>/{config.json, model.safetensors, reference.safetensors}:
  reference.safetensors: input_ids int64 [B,T]; logits f32 [B,T,V]; hidden_<i> f32 [B,T,H] (embeddings, then after
  each decoder layer, the last one after the final norm, as transformers returns them); and a padded batch:
  pad_input_ids, pad_attention_mask, pad_position_ids, pad_logits (left padding, explicit position ids).
PostTrain's tests (tests/PostTrain.Core.Tests/Parity) load these on CPU in fp32 and require max |diff| <= 1e-4.
"""
import json, os, sys
import torch
from safetensors.torch import save_file
import transformers
from transformers import DeepseekV3Config, DeepseekV3ForCausalLM

torch.manual_seed(1234)

BASE = dict(
    vocab_size=256, hidden_size=64, intermediate_size=96, moe_intermediate_size=32,
    num_attention_heads=4, num_key_value_heads=4, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16,
    kv_lora_rank=32, n_routed_experts=8, num_experts_per_tok=2, max_position_embeddings=256,
    rms_norm_eps=1e-6, initializer_range=0.1, hidden_act="silu", attention_bias=False,
    bos_token_id=1, eos_token_id=2, pad_token_id=0, num_nextn_predict_layers=1,
)
CASES = {
    # q LoRA + group-limited routing + norm_topk_prob, interleaved rope, one dense layer.
    "qlora_grouped": dict(q_lora_rank=32, n_group=4, topk_group=2, norm_topk_prob=True, routed_scaling_factor=2.5,
                          num_hidden_layers=3, first_k_dense_replace=1, n_shared_experts=1, rope_interleave=True,
                          tie_word_embeddings=False, rope_theta=10000.0),
    # no q LoRA + YaRN + no normalisation + two dense layers, two shared experts, tied embeddings.
    "noqlora_yarn": dict(q_lora_rank=None, n_group=1, topk_group=1, norm_topk_prob=False, routed_scaling_factor=1.5,
                         num_hidden_layers=4, first_k_dense_replace=2, n_shared_experts=2, rope_interleave=True,
                         tie_word_embeddings=True, rope_theta=10000.0,
                         rope_scaling=dict(rope_type="yarn", factor=4.0, original_max_position_embeddings=64,
                                           beta_fast=32, beta_slow=1, mscale=1.0, mscale_all_dim=1.0)),
    # not interleaved rope, 2 groups of 4 experts, top-1 group, no dense layer
    "plain_rope": dict(q_lora_rank=24, n_group=2, topk_group=1, norm_topk_prob=True, routed_scaling_factor=1.0,
                       num_hidden_layers=2, first_k_dense_replace=0, n_shared_experts=1, rope_interleave=False,
                       tie_word_embeddings=False, rope_theta=500.0),
    # DeepSeek-V2-style routing: softmax scores, no correction bias, group-limited greedy (group max)
    "v2_softmax": dict(model_type="deepseek_v2", q_lora_rank=None, n_group=2, topk_group=1, topk_method="group_limited_greedy",
                       norm_topk_prob=False, routed_scaling_factor=1.0, num_hidden_layers=2, first_k_dense_replace=1,
                       n_shared_experts=1, tie_word_embeddings=False, rope_theta=10000.0),
}

def make(case, extra, out):
    if extra.get("model_type") == "deepseek_v2":
        from transformers import DeepseekV2Config, DeepseekV2ForCausalLM
        kw = {k: v for k, v in {**BASE, **extra}.items() if k not in ("model_type", "rope_interleave", "num_nextn_predict_layers")}
        cfg = DeepseekV2Config(**kw)
        model = DeepseekV2ForCausalLM(cfg).eval()
    else:
        cfg = DeepseekV3Config(**{**BASE, **extra})
        model = DeepseekV3ForCausalLM(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))       # non-trivial norm weights
        for name, b in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                b.copy_(0.05 * torch.randn_like(b))             # random non-zero correction bias
    d = os.path.join(out, case)
    model.save_pretrained(d, safe_serialization=True)
    B, T = 2, 24
    ids = torch.randint(3, cfg.vocab_size, (B, T))
    ref = {"input_ids": ids}
    with torch.no_grad():
        o = model(input_ids=ids, output_hidden_states=True)
        ref["logits"] = o.logits.float().contiguous()
        for i, h in enumerate(o.hidden_states):
            ref[f"hidden_{i}"] = h.float().contiguous()
        # padded batch: row 0 has 5 left pads, row 1 none; explicit position ids restart at the first real token
        mask = torch.ones(B, T, dtype=torch.long); mask[0, :5] = 0
        pids = (mask.cumsum(-1) - 1).clamp(min=0)
        pad_ids = ids.clone(); pad_ids[0, :5] = cfg.pad_token_id
        op = model(input_ids=pad_ids, attention_mask=mask, position_ids=pids)
        ref.update(pad_input_ids=pad_ids, pad_attention_mask=mask, pad_position_ids=pids, pad_logits=op.logits.float().contiguous())
    save_file(ref, os.path.join(d, "reference.safetensors"))
    print(case, "params", sum(p.numel() for p in model.parameters()), "logit std", float(ref["logits"].std()))

if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    print("transformers", transformers.__version__, "torch", torch.__version__)
    for case, extra in CASES.items():
        try:
            make(case, extra, out)
        except Exception as e:  # report and go on: one broken case must not cost the others
            import traceback; traceback.print_exc()
            print("FAILED", case, e)
