// One pre-norm transformer block: x += attn(norm1(x)); x += ffn(norm2(x)). The ffn is a dense SwiGLU MLP for the
// first first_k_dense_replace layers and a DeepSeekMoE layer after that.
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

public sealed class DecoderLayer : nn.Module<Tensor, Tensor>
{
    private readonly RMSNorm input_layernorm, post_attention_layernorm;
    private readonly MlaAttention self_attn;
    private readonly nn.Module<Tensor, Tensor> mlp;   // Mlp or MoE

    public DecoderLayer(ModelConfig c, bool moe, Device? device = null) : base(nameof(DecoderLayer))
    {
        input_layernorm = new RMSNorm(c.HiddenSize, c.RmsNormEps, device);
        post_attention_layernorm = new RMSNorm(c.HiddenSize, c.RmsNormEps, device);
        self_attn = new MlaAttention(c, device);
        mlp = moe ? new MoE(c, device) : new Mlp(c.HiddenSize, c.IntermediateSize, device);
        RegisterComponents();
    }

    public MlaAttention Attention => self_attn;
    public MoE? Moe => mlp as MoE;
    internal RMSNorm InputNorm => input_layernorm;
    internal RMSNorm PostAttentionNorm => post_attention_layernorm;
    internal nn.Module<Tensor, Tensor> Ffn => mlp;

    public override Tensor forward(Tensor x) => throw new InvalidOperationException("call Forward(x, cos, sin, rotary, mask)");

    /// <summary>x (B, T, H) -> (B, T, H).</summary>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Rotary rotary, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        var h = x + self_attn.Forward(input_layernorm.forward(x), cos, sin, rotary, mask);
        h = h + mlp.forward(post_attention_layernorm.forward(h));
        return h.MoveToOuterDisposeScope();
    }
}
