// How a LoRA adapter's MLP tensors are named and shaped in a PEFT adapter directory (attention adapters are the same in
// both: <module>.lora_A.weight (r, in), <module>.lora_B.weight (out, r) under target_modules).
// - FusedExperts: what peft loads with transformers 5, whose deepseek_v3 routed experts are the fused parameters
//   mlp.experts.gate_up_proj (E, 2I, H; gate rows first) and mlp.experts.down_proj (E, H, I). peft adapts those with a
//   ParamWrapper (target_parameters), A (r*E, in) expert-major and B (out, r*E) rank-major (column k*E + e); gate and up
//   share one wrapper of rank 2r (rank_pattern/alpha_pattern 2r, 2 alpha, so the scale stays alpha / r) whose B is
//   block-diagonal per expert. The dense and shared-expert MLPs go in target_parameters as <path>.weight (peft's
//   transformers-5 conversion would move gate_proj/up_proj/down_proj in target_modules onto the routed experts), so
//   lora_dropout is written as 0 (peft's ParamWrapper refuses dropout; it only matters while training).
//   Source: /work/notes/peftfused-findings.md.
// - PerExpert: transformers 4's per-expert modules: <experts>.{e}.<proj>.lora_A.weight (r, in), lora_B (out, r), and
//   gate_proj/up_proj/down_proj in target_modules.
namespace PostTrain.Core.Model;

public enum PeftLayout { FusedExperts, PerExpert }
