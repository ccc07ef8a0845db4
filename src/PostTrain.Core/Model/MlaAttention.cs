// Multi-head latent attention (DeepSeek-V2/V3). Queries: q_b(norm(q_a(x))) with q LoRA, else q_proj(x); each head is
// [nope | rope]. Keys/values come from a compressed latent: kv_a_proj_with_mqa(x) = [latent | k_rope (one head shared
// by all heads)]; the normed latent goes through kv_b_proj to per-head [k_nope | v]. Softmax scale is
// qk_head_dim^-0.5, times mscale(factor, mscale_all_dim)^2 under YaRN. The core runs through
// scaled_dot_product_attention; with PadValueToQkDim, v is zero-padded to the q/k head dim and the output cut back
// (exact: the padded columns of softmax(qk) v are zero), so SDPA can pick the flash kernel, which wants equal head
// dims. With SelectiveRecompute (DeepSeek-V3's memory trick), everything after the down-projections (latent norms,
// up-projections, rotary, attention core) is one recompute region: backward keeps only the compressed latents and runs
// that part again. On CUDA the step from the up-projections to SDPA's operands (rotary, cats, prescale, v padding) is one
// fused kernel each way (Kernels.TrainKernels). The cached decode path (latent cache, absorbed projections) lives in Generation.
using PostTrain.Core.Kernels;
using PostTrain.Core.Recompute;
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

public sealed class MlaAttention : nn.Module<Tensor, Tensor>
{
    private readonly Linear? q_proj, q_a_proj, q_b_proj;
    private readonly RMSNorm? q_a_layernorm;
    private readonly Linear kv_a_proj_with_mqa, kv_b_proj, o_proj;
    private readonly RMSNorm kv_a_layernorm;

    private readonly int heads, nope, rope, vDim, kvRank;
    /// <summary>The factor q is multiplied by so that SDPA's default 1/sqrt(qk_head_dim) gives the model's scale.</summary>
    private readonly double qPrescale;

    public double SoftmaxScale { get; }
    /// <summary>Zero-pad v to the q/k head dim for SDPA (flash attention wants equal head dims); off by default.</summary>
    public bool PadValueToQkDim { get; set; }
    /// <summary>Keep only the compressed latents for backward and recompute the rest of the attention before o_proj there
    /// (RecomputeMode.Selective); off by default.</summary>
    public bool SelectiveRecompute { get; set; }
    internal ModelConfig Config { get; }

    public MlaAttention(ModelConfig c, Device? device = null) : base(nameof(MlaAttention))
    {
        Config = c;
        heads = c.NumAttentionHeads; nope = c.QkNopeHeadDim; rope = c.QkRopeHeadDim; vDim = c.VHeadDim; kvRank = c.KvLoraRank;
        if (c.QLoraRank is int qr)
        {
            q_a_proj = new Linear(c.HiddenSize, qr, c.AttentionBias, device: device);
            q_a_layernorm = new RMSNorm(qr, device: device);   // HF builds these two norms with the default eps 1e-6
            q_b_proj = new Linear(qr, heads * c.QkHeadDim, device: device);
        }
        else q_proj = new Linear(c.HiddenSize, heads * c.QkHeadDim, device: device);
        kv_a_proj_with_mqa = new Linear(c.HiddenSize, kvRank + rope, c.AttentionBias, device: device);
        kv_a_layernorm = new RMSNorm(kvRank, device: device);
        kv_b_proj = new Linear(kvRank, heads * (nope + vDim), device: device);
        o_proj = new Linear(heads * vDim, c.HiddenSize, c.AttentionBias, device: device);

        double scale = Math.Pow(c.QkHeadDim, -0.5);
        if (c.Yarn is { } y && y.MscaleAllDim is { } mad && mad != 0 && y.Factor > 1)
        {
            double m = 0.1 * mad * Math.Log(y.Factor) + 1.0;
            scale *= m * m;
        }
        SoftmaxScale = scale;
        qPrescale = scale * Math.Sqrt(c.QkHeadDim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => throw new InvalidOperationException("call Forward(x, cos, sin, rotary, mask)");

    /// <summary>x (B, T, H) -> (B, T, H). cos/sin (B, 1, T, rope/2) from <see cref="Rotary.Angles"/>;
    /// mask null = plain causal, else a boolean (B, 1, T, T) mask (true = attend).</summary>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Rotary rotary, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        var qIn = q_a_proj is not null ? q_a_proj.forward(x) : x;                    // (B, T, q_rank) or (B, T, H)
        var ckv = kv_a_proj_with_mqa.forward(x);                                    // (B, T, r + rope)
        var o = SelectiveRecompute
            ? ActivationRecompute.Run(a => [Core(a[0]!, a[1]!, a[2]!, a[3]!, rotary, a[4])], [qIn, ckv, cos, sin, mask],
                ActivationRecompute.ParametersOf(q_proj, q_a_layernorm, q_b_proj, kv_a_layernorm, kv_b_proj))[0]
            : Core(qIn, ckv, cos, sin, rotary, mask);                               // (B, T, h * v)
        return o_proj.forward(o).MoveToOuterDisposeScope();
    }

    // From the compressed latents to the attention output before o_proj: qIn (B, T, q_rank) with a q LoRA (normed and
    // up-projected by q_b_proj), else the normed input (B, T, H) (q_proj); ckv (B, T, r + rope) = [latent | k_rope].
    // -> (B, T, h * v). The region DeepSeek-V3's recompute runs again in backward (SelectiveRecompute).
    private Tensor Core(Tensor qIn, Tensor ckv, Tensor cos, Tensor sin, Rotary rotary, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        long B = qIn.shape[0], T = qIn.shape[1];
        var q = q_proj is not null ? q_proj.forward(qIn) : q_b_proj!.forward(q_a_layernorm!.forward(qIn));   // (B, T, h * qk)
        var latent = kv_a_layernorm.forward(ckv.narrow(-1, 0, kvRank));            // (B, T, r)
        var kv = kv_b_proj.forward(latent);                                         // (B, T, h * (nope + v))
        var kRope = ckv.narrow(-1, kvRank, rope);                                   // (B, T, rope)

        long qk = nope + rope;
        bool pad = PadValueToQkDim && vDim < qk;
        var d = new MlaHeads(heads, nope, rope, vDim, pad ? (int)qk : vDim);
        // q = [q_nope, rope(q_rope)] * prescale, k = [k_nope, rope(k_rope) for every head], v padded for SDPA: (B, h, T, .).
        // On CUDA one fused kernel each way (Kernels.TrainKernels), else the plain ops.
        var (qFull, k, vIn) = TrainKernels.For(q) is { } fused && TrainKernels.MlaFits(q, kv, kRope, cos, sin, d)
            ? TrainOps.MlaQkv(q, kv, kRope, cos, sin, d, qPrescale, rotary.Interleave, fused)
            : ReferenceTrainKernels.PlainQkv(q, kv, kRope, cos, sin, d, qPrescale, x => rotary.Apply(x, cos, sin));
        var attn = mask is null
            ? nn.functional.scaled_dot_product_attention(qFull, k, vIn, is_casual: true)
            : nn.functional.scaled_dot_product_attention(qFull, k, vIn, attn_mask: mask);   // (B, h, T, v or qk)
        if (pad) attn = attn.narrow(-1, 0, vDim);                                          // (B, h, T, v)
        return attn.transpose(1, 2).reshape(B, T, heads * vDim).MoveToOuterDisposeScope();
    }

    // Accessors for the cached decode path (absorbed projections).
    internal Linear? QProj => q_proj;
    internal Linear? QAProj => q_a_proj;
    internal Linear? QBProj => q_b_proj;
    internal RMSNorm? QALayerNorm => q_a_layernorm;
    internal Linear KvAProj => kv_a_proj_with_mqa;
    internal RMSNorm KvALayerNorm => kv_a_layernorm;
    internal Linear KvBProj => kv_b_proj;
    internal Linear OProj => o_proj;
}
