// One pre-norm transformer block: x += attn(norm1(x)); x += ffn(norm2(x)). The ffn is a dense SwiGLU MLP for the
// first first_k_dense_replace layers and a DeepSeekMoE layer after that (holding this rank's routed experts only under
// expert parallelism). Recompute: Layer makes the whole block one recompute region (backward keeps its input only);
// Selective recomputes both norms (and the attention's MLA up-projections, MlaAttention.SelectiveRecompute).
using PostTrain.Core.Distributed;
using PostTrain.Core.Recompute;
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

public sealed class DecoderLayer : nn.Module<Tensor, Tensor>
{
    private readonly RMSNorm input_layernorm, post_attention_layernorm;
    private readonly MlaAttention self_attn;
    private readonly nn.Module<Tensor, Tensor> mlp;   // Mlp, MoE or ExpertParallelMoE

    public DecoderLayer(ModelConfig c, bool moe, Device? device = null, ExpertParallelism? ep = null) : base(nameof(DecoderLayer))
    {
        input_layernorm = new RMSNorm(c.HiddenSize, c.RmsNormEps, device);
        post_attention_layernorm = new RMSNorm(c.HiddenSize, c.RmsNormEps, device);
        self_attn = new MlaAttention(c, device);
        mlp = moe ? MoeLayer(c, device, ep) : new Mlp(c.HiddenSize, c.IntermediateSize, device);
        RegisterComponents();
    }

    public MlaAttention Attention => self_attn;
    public IMoeLayer? Moe => mlp as IMoeLayer;

    /// <summary>The single-process MoE, or the expert-parallel one when <paramref name="ep"/> spans several ranks.</summary>
    internal static nn.Module<Tensor, Tensor> MoeLayer(ModelConfig c, Device? device, ExpertParallelism? ep) =>
        ep is { Size: > 1 } ? new ExpertParallelMoE(c, ep.Experts, ep.MaxDevicesPerToken, device) : new MoE(c, device);
    internal RMSNorm InputNorm => input_layernorm;
    internal RMSNorm PostAttentionNorm => post_attention_layernorm;
    internal nn.Module<Tensor, Tensor> Ffn => mlp;

    /// <summary>Activation recompute of this layer (RecomputeMode); set through DeepSeekForCausalLM.Recompute.</summary>
    internal RecomputeMode Recompute { get; set; }

    public override Tensor forward(Tensor x) => throw new InvalidOperationException("call Forward(x, cos, sin, rotary, mask)");

    /// <summary>x (B, T, H) -> (B, T, H).</summary>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Rotary rotary, Tensor? mask) => Recompute == RecomputeMode.Layer
        ? ActivationRecompute.Run(a => [Block(a[0]!, a[1]!, a[2]!, rotary, a[3])], [x, cos, sin, mask], ActivationRecompute.ParametersOf(this))[0]
        : Block(x, cos, sin, rotary, mask);

    private Tensor Block(Tensor x, Tensor cos, Tensor sin, Rotary rotary, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        bool norms = Recompute == RecomputeMode.Selective;
        var h = x + self_attn.Forward(input_layernorm.Forward(x, norms), cos, sin, rotary, mask);
        h = h + mlp.forward(post_attention_layernorm.Forward(h, norms));
        return h.MoveToOuterDisposeScope();
    }
}
