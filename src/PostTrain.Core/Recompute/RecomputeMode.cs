// Activation recompute in training forwards (config key `recompute`): what the autograd graph keeps between forward
// and backward, and what backward computes again instead.
//   none:      everything autograd saves is kept (the plain forward).
//   selective: DeepSeek-V3's trick: every RMSNorm and MLA's up-projections are recomputed in backward. Each norm keeps
//              only its input (its fp32 intermediates are recomputed); the attention keeps its compressed latents (the
//              q LoRA output, or the normed input without a q LoRA, and kv_a_proj_with_mqa's [latent | k_rope]) and
//              recomputes the latent norms, q_b_proj / kv_b_proj, rotary and the attention core from them, so the
//              per-head q, k, v (and what SDPA saves) are never stored. MoE and MLP activations are kept.
//   layer:     full decoder-layer checkpointing: each decoder layer (and each MTP module's block) keeps only its input;
//              backward runs the whole layer's forward again. Not with expert parallelism (its all-to-alls would run
//              again inside backward).
namespace PostTrain.Core.Recompute;

public enum RecomputeMode
{
    None,
    Selective,
    Layer,
}
