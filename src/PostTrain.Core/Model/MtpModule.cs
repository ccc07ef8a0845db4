// Multi-token prediction module k (DeepSeek-V3): takes h_{k-1} at position i and the embedding of token i+k,
// h' = eh_proj(concat(enorm(emb), hnorm(h))) (embedding first, as in the checkpoint), runs one transformer block,
// and the shared output head (after shared_head.norm) predicts token i+k+1. Embedding and output head are the main
// model's. Checkpoint names: model.layers.{num_hidden_layers + k - 1}.{enorm, hnorm, eh_proj, shared_head.norm, <block>}.
using PostTrain.Core.Recompute;
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

public sealed class SharedHead : nn.Module<Tensor, Tensor>
{
    private readonly RMSNorm norm;
    public SharedHead(ModelConfig c, Device? device = null) : base(nameof(SharedHead)) { norm = new RMSNorm(c.HiddenSize, c.RmsNormEps, device); RegisterComponents(); }
    internal RMSNorm Norm => norm;
    public override Tensor forward(Tensor x) => norm.forward(x);
}

public sealed class MtpModule : nn.Module<Tensor, Tensor>
{
    private readonly RMSNorm enorm, hnorm;
    private readonly Linear eh_proj;
    private readonly RMSNorm input_layernorm, post_attention_layernorm;
    private readonly MlaAttention self_attn;
    private readonly nn.Module<Tensor, Tensor> mlp;
    private readonly SharedHead shared_head;

    public MtpModule(ModelConfig c, Device? device = null, PostTrain.Core.Distributed.ExpertParallelism? ep = null) : base(nameof(MtpModule))
    {
        enorm = new RMSNorm(c.HiddenSize, c.RmsNormEps, device);
        hnorm = new RMSNorm(c.HiddenSize, c.RmsNormEps, device);
        eh_proj = new Linear(2 * c.HiddenSize, c.HiddenSize, device: device);
        input_layernorm = new RMSNorm(c.HiddenSize, c.RmsNormEps, device);
        post_attention_layernorm = new RMSNorm(c.HiddenSize, c.RmsNormEps, device);
        self_attn = new MlaAttention(c, device);
        mlp = c.NRoutedExperts > 0 ? DecoderLayer.MoeLayer(c, device, ep) : new Mlp(c.HiddenSize, c.IntermediateSize, device);
        shared_head = new SharedHead(c, device);
        RegisterComponents();
    }

    public IMoeLayer? Moe => mlp as IMoeLayer;
    public MlaAttention Attention => self_attn;
    // Accessors for the cached decode path (Generation).
    internal RMSNorm EmbedNorm => enorm;
    internal RMSNorm HiddenNorm => hnorm;
    internal Linear EhProj => eh_proj;
    internal RMSNorm InputNorm => input_layernorm;
    internal RMSNorm PostAttentionNorm => post_attention_layernorm;
    internal nn.Module<Tensor, Tensor> Ffn => mlp;
    internal RMSNorm HeadNorm => shared_head.Norm;

    public override Tensor forward(Tensor x) => throw new InvalidOperationException("call Forward(...)");

    /// <summary>Activation recompute of this module (RecomputeMode); set through DeepSeekForCausalLM.Recompute.</summary>
    internal RecomputeMode Recompute { get; set; }

    /// <summary>h (B, T', H) from the previous depth, emb (B, T', H) embeddings of the tokens k ahead ->
    /// (hidden (B, T', H) for the next depth, normed (B, T', H) for the shared head).</summary>
    public (Tensor Hidden, Tensor Normed) Forward(Tensor h, Tensor emb, Tensor cos, Tensor sin, Rotary rotary, Tensor? mask)
    {
        if (Recompute != RecomputeMode.Layer) return Block(h, emb, cos, sin, rotary, mask);
        var outs = ActivationRecompute.Run(a =>
        {
            var (x, normed) = Block(a[0]!, a[1]!, a[2]!, a[3]!, rotary, a[4]);
            return [x, normed];
        }, [h, emb, cos, sin, mask], ActivationRecompute.ParametersOf(this));
        return (outs[0], outs[1]);
    }

    private (Tensor Hidden, Tensor Normed) Block(Tensor h, Tensor emb, Tensor cos, Tensor sin, Rotary rotary, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        bool norms = Recompute == RecomputeMode.Selective;
        var x = eh_proj.forward(cat([enorm.Forward(emb, norms), hnorm.Forward(h, norms)], -1));   // (B, T', H)
        x = x + self_attn.Forward(input_layernorm.Forward(x, norms), cos, sin, rotary, mask);
        x = x + mlp.forward(post_attention_layernorm.Forward(x, norms));
        var normed = shared_head.Norm.Forward(x, norms);
        return (x.MoveToOuterDisposeScope(), normed.MoveToOuterDisposeScope());
    }
}
