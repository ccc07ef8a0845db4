// The DeepSeek-V3-architecture causal language model: embeddings, decoder layers (MLA + dense/MoE ffn), final norm,
// output head, and optional multi-token-prediction modules. Parameter names follow Hugging Face
// (model.embed_tokens, model.layers.L.*, model.norm, lm_head); MTP modules live in `mtp.k` and map to
// model.layers.{num_hidden_layers + k} in checkpoints (see Checkpoints/HfNames). Built with an ExpertParallelism of
// several ranks, every MoE layer holds this rank's routed experts only (Distributed/ExpertParallelMoE); the parameter
// names stay the same, the expert stacks hold E/P experts (HfStateDict maps them to their global expert numbers).
// Recompute (RecomputeMode) trades backward compute for activation memory in training forwards.
using PostTrain.Core.Distributed;
using PostTrain.Core.Recompute;
using TorchSharp;
using TorchSharp.Modules;
using Embedding = PostTrain.Core.Model.Embedding;
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

/// <summary>Logits (B, T, V); Hidden (B, T, H): the last decoder layer's output before the final norm;
/// MtpLogits[k-1] (B, T-k, V) predicting token t+k+1 at position t; HiddenStates as Hugging Face returns them.</summary>
public sealed record ModelOutput(Tensor Logits, Tensor Hidden, IReadOnlyList<Tensor> MtpLogits, IReadOnlyList<Tensor>? HiddenStates);

public sealed class DecoderStack : nn.Module<Tensor, Tensor>
{
    private readonly Embedding embed_tokens;
    private readonly ModuleList<DecoderLayer> layers;
    private readonly RMSNorm norm;

    public DecoderStack(ModelConfig c, Device? device = null, ExpertParallelism? ep = null) : base("model")
    {
        embed_tokens = new Embedding(c.VocabSize, c.HiddenSize, device);
        layers = new ModuleList<DecoderLayer>();
        for (int i = 0; i < c.NumHiddenLayers; i++) layers.Add(new DecoderLayer(c, c.IsMoeLayer(i), device, ep));
        norm = new RMSNorm(c.HiddenSize, c.RmsNormEps, device);
        RegisterComponents();
    }

    public Embedding Embed => embed_tokens;
    public ModuleList<DecoderLayer> Layers => layers;
    public RMSNorm Norm => norm;
    public override Tensor forward(Tensor x) => throw new InvalidOperationException();
}

public sealed class DeepSeekForCausalLM : nn.Module<Tensor, Tensor>
{
    private readonly DecoderStack model;
    private readonly Linear? lm_head;              // null when tie_word_embeddings
    private readonly ModuleList<MtpModule> mtp;

    public ModelConfig Config { get; }
    public Rotary Rotary { get; }
    /// <summary>Activation dtype: Float32 or BFloat16 (weights stay fp32 masters).</summary>
    public ScalarType ComputeDtype { get; set; } = ScalarType.Float32;

    /// <summary>Applied to each decoder layer's input, (layer index, hidden) => hidden: the identity in forward that
    /// signals in backward when the layer's gradients are complete (DataParallelOptimizer.EnableOverlap). Null: none.</summary>
    public Func<int, Tensor, Tensor>? LayerInputMarker { get; set; }

    /// <summary>Each decoder layer's parameters, in layer order (the blocks of LayerInputMarker).</summary>
    public IReadOnlyList<IEnumerable<Parameter>> LayerParameters() => model.Layers.Select(l => l.parameters()).ToList();

    /// <param name="device">Where parameters are allocated; the meta device builds the model without memory.</param>
    /// <param name="expertParallel">Expert parallelism over several ranks (null or one rank: every expert here).</param>
    public DeepSeekForCausalLM(ModelConfig config, Device? device = null, ExpertParallelism? expertParallel = null) : base(nameof(DeepSeekForCausalLM))
    {
        config.Validate();
        Config = config;
        ExpertParallel = expertParallel is { Size: > 1 } ? expertParallel : null;
        if (ExpertParallel is { } ep && config.NRoutedExperts % ep.Size != 0)
            throw new ArgumentException($"distributed.expert_parallel: {ep.Size} does not divide n_routed_experts {config.NRoutedExperts}");
        Rotary = new Rotary(config);
        model = new DecoderStack(config, device, ExpertParallel);
        if (!config.TieWordEmbeddings) lm_head = new Linear(config.HiddenSize, config.VocabSize, device: device);
        mtp = new ModuleList<MtpModule>();
        for (int k = 0; k < config.NumNextnPredictLayers; k++) mtp.Add(new MtpModule(config, device, ExpertParallel));
        RegisterComponents();
    }

    /// <summary>The expert-parallel layout when the routed experts are sharded over several ranks, else null.</summary>
    public ExpertParallelism? ExpertParallel { get; }

    public DecoderStack Model => model;
    public ModuleList<MtpModule> Mtp => mtp;
    public Tensor HeadWeight => lm_head?.Weight ?? model.Embed.Weight;

    /// <summary>Every MoE layer, main model first, then MTP modules.</summary>
    public IEnumerable<IMoeLayer> MoeLayers() =>
        model.Layers.Select(l => l.Moe).Concat(mtp.Select(m => m.Moe)).Where(m => m is not null)!;

    public override Tensor forward(Tensor inputIds) => Forward(inputIds).Logits;

    /// <summary>inputIds (B, T) int64; positionIds (B, T) (default 0..T-1); mask: padding or packed segments.</summary>
    public ModelOutput Forward(Tensor inputIds, Tensor? positionIds = null, AttentionMask? mask = null,
        bool computeMtp = false, bool returnHiddenStates = false)
    {
        using var scope = NewDisposeScope();
        long B = inputIds.shape[0], T = inputIds.shape[1];
        var device = inputIds.device;
        positionIds ??= arange(T, device: device).unsqueeze(0).expand(B, T);
        var states = returnHiddenStates ? new List<Tensor>() : null;
        using var counting = CountRealTokens(mask);
        var (emb, h, normed) = Trunk(inputIds, positionIds, mask, states);
        if (states is not null) states[^1] = normed;   // Hugging Face returns the last state after the final norm
        var logits = Head(normed);                                                 // (B, T, V)
        Runtime.MemoryTrace.Mark("head", logits);

        var mtpLogits = computeMtp
            ? MtpNormed(emb, h, positionIds, mask, counting, mtp.Count).Select(n => Head(n).MoveToOuterDisposeScope()).ToList()
            : [];
        var outStates = states?.Select(s => s.MoveToOuterDisposeScope()).ToList();
        return new ModelOutput(logits.MoveToOuterDisposeScope(), h.MoveToOuterDisposeScope(), mtpLogits, outStates);
    }

    /// <summary>The final normed hidden states (B, T, H) in the activation dtype, without the output head or MTP:
    /// what a scalar head (RewardModel) reads.</summary>
    public Tensor NormedHidden(Tensor inputIds, Tensor? positionIds = null, AttentionMask? mask = null)
    {
        using var scope = NewDisposeScope();
        long B = inputIds.shape[0], T = inputIds.shape[1];
        positionIds ??= arange(T, device: inputIds.device).unsqueeze(0).expand(B, T);
        using var counting = CountRealTokens(mask);
        return Trunk(inputIds, positionIds, mask, null).Normed.MoveToOuterDisposeScope();
    }

    /// <summary>The final normed hidden states (B, T, H) and each MTP depth k = 1..<paramref name="depth"/>'s normed output
    /// (B, T - k, H): what Forward feeds the LM head (with computeMtp), without the head. The fast path's chunked head
    /// loss reads them, so no (B, T, V) logits are made.</summary>
    public (Tensor Normed, IReadOnlyList<Tensor> MtpNormed) NormedHiddenWithMtp(Tensor inputIds, Tensor? positionIds, AttentionMask? mask, int depth)
    {
        using var scope = NewDisposeScope();
        long B = inputIds.shape[0], T = inputIds.shape[1];
        positionIds ??= arange(T, device: inputIds.device).unsqueeze(0).expand(B, T);
        using var counting = CountRealTokens(mask);
        var (emb, h, normed) = Trunk(inputIds, positionIds, mask, null);
        var ahead = MtpNormed(emb, h, positionIds, mask, counting, Math.Min(depth, mtp.Count)).Select(n => n.MoveToOuterDisposeScope()).ToList();
        return (normed.MoveToOuterDisposeScope(), ahead);
    }

    // MTP depths 1..depth over the trunk's embeddings and last hidden states: each module's normed output (B, T - k, H),
    // predicting token t + k + 1 at position t (DeepSeek-V3's sequential MTP: depth k reads depth k - 1's hidden states).
    private List<Tensor> MtpNormed(Tensor emb, Tensor h, Tensor positionIds, AttentionMask? mask, TokenCounting counting, int depth)
    {
        long B = emb.shape[0], T = emb.shape[1];
        var result = new List<Tensor>();
        var hk = h;
        for (int k = 1; k <= depth && k < T; k++)
        {
            long tk = T - k;
            var embAhead = emb.narrow(1, k, tk);                                // embeddings of tokens t+k
            var prev = hk.narrow(1, 0, tk);
            var pos = positionIds.narrow(1, 0, tk);
            var (ck, sk) = Rotary.Angles(pos);
            Tensor? mk = null;
            if (mask is not null && !mask.IsPlainCausal)
                mk = new AttentionMask(mask.KeyPadding?.narrow(1, 0, tk), mask.SegmentIds?.narrow(1, 0, tk)).Build(B, tk, tk, emb.device);
            counting.Ahead(mtp[k - 1].Moe, k, tk);
            var (hNext, normedK) = mtp[k - 1].Forward(prev, embAhead, ck, sk, Rotary, mk);
            result.Add(normedK);
            hk = hNext;
        }
        return result;
    }

    /// <summary>For one forward: every MoE layer's TokenMask = the mask's real tokens, so padding is not counted as
    /// load by the aux-loss-free balancer (cleared when disposed). Ahead gives MTP depth k's layer its positions t whose
    /// token t and token t + k are both real.</summary>
    private TokenCounting CountRealTokens(AttentionMask? mask)
    {
        var real = mask?.RealTokens();
        if (real is null) return TokenCounting.None;                         // every token counts: nothing to set or clear
        foreach (var m in model.Layers.Select(l => l.Moe).Where(m => m is not null)) m!.TokenMask = real.reshape(-1);
        return new TokenCounting(MoeLayers().ToList(), real);
    }

    private sealed class TokenCounting(List<IMoeLayer> layers, Tensor? real) : IDisposable
    {
        public static readonly TokenCounting None = new([], null);

        public void Ahead(IMoeLayer? moe, int k, long tokens)
        {
            if (moe is not null && real is not null) moe.TokenMask = (real.narrow(1, 0, tokens) & real.narrow(1, k, tokens)).reshape(-1);
        }

        public void Dispose()
        {
            foreach (var m in layers) m.TokenMask = null;
        }
    }

    // Embeddings, decoder layers and final norm; states (when given) collects the embeddings and every layer's output.
    private (Tensor Emb, Tensor H, Tensor Normed) Trunk(Tensor inputIds, Tensor positionIds, AttentionMask? mask, List<Tensor>? states)
    {
        long B = inputIds.shape[0], T = inputIds.shape[1];
        var (cos, sin) = Rotary.Angles(positionIds);                               // (B, 1, T, rope/2)
        Tensor? maskT = mask is null || mask.IsPlainCausal ? null : mask.Build(B, T, T, inputIds.device);
        var emb = model.Embed.forward(inputIds).to(ComputeDtype);                   // (B, T, H)
        // a layer's input is marked where it is produced, so every use of it (the MTP modules use the embeddings)
        // takes its gradient through the marker: the gradient sums keep the unmarked model's order, bit for bit
        var h = emb = Marked(0, emb);
        states?.Add(h);
        Runtime.MemoryTrace.Mark("embedding", h);
        for (int i = 0; i < model.Layers.Count; i++)
        {
            h = model.Layers[i].Forward(h, cos, sin, Rotary, maskT);
            Runtime.MemoryTrace.Mark($"layer {i}", h);
            if (i + 1 < model.Layers.Count) h = Marked(i + 1, h);
            states?.Add(h);
        }
        return (emb, h, model.Norm.Forward(h, Recompute == RecomputeMode.Selective));
    }

    private Tensor Marked(int layer, Tensor input) => LayerInputMarker is { } mark ? mark(layer, input) : input;

    /// <summary>The output head (kept in the activation dtype's higher precision: fp32 weights cast as needed).</summary>
    public Tensor Head(Tensor normed) => LinearCompute.Apply(normed, HeadWeight, null);

    /// <summary>Random init as Hugging Face does for training from scratch: normal(0, std) for linear, embedding,
    /// router and expert weights; ones for norms; zeros for biases. On the CPU a seeded init draws from its own generator
    /// (the same stream as the seeded global one, and the global generator is left where that would leave it), so two
    /// inits with one seed are equal even while other threads use the global generator (parallel tests did).</summary>
    public void InitWeights(double std = 0.02, long? seed = null)
    {
        using var _ = no_grad();
        bool cpu = parameters().All(p => p.device_type == DeviceType.CPU);
        using var local = seed is long s0 && cpu ? new Generator(unchecked((ulong)s0)) : null;
        if (seed is long s && local is null) random.manual_seed(s);
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith("norm.weight") || name.Contains("layernorm")) p.fill_(1.0);
            else if (name.EndsWith(".bias")) p.zero_();
            else p.normal_(0, std, local);
        }
        foreach (var moe in MoeLayers()) moe.Gate.CorrectionBias?.zero_();
        if (local is not null) random.set_rng_state(local.get_state());
    }

    public long ParameterCount() => parameters().Sum(p => p.numel());

    private RecomputeMode recompute;

    /// <summary>Activation recompute in training forwards (RecomputeMode: none, selective, layer), on every decoder layer
    /// and MTP module. Forwards without autograd (evaluation, generation) are unaffected. Layer is refused with expert
    /// parallelism (the replay would run the MoE all-to-alls again inside backward).</summary>
    public RecomputeMode Recompute
    {
        get => recompute;
        set
        {
            if (value == RecomputeMode.Layer && ExpertParallel is not null)
                throw new ArgumentException("recompute: layer re-runs each MoE layer's all-to-alls inside backward, which expert " +
                    "parallelism does not support; use selective or none");
            recompute = value;
            foreach (var (_, m) in named_modules())
                switch (m)
                {
                    case DecoderLayer l: l.Recompute = value; break;
                    case MtpModule k: k.Recompute = value; break;
                    case MlaAttention a: a.SelectiveRecompute = value == RecomputeMode.Selective; break;
                }
        }
    }

    /// <summary>Sets <see cref="MlaAttention.PadValueToQkDim"/> on every attention module (main model and MTP).</summary>
    public void SetAttentionValuePadding(bool on)
    {
        foreach (var (_, m) in named_modules())
            if (m is MlaAttention a) a.PadValueToQkDim = on;
    }

    public PostTrain.Core.Precision.Precision Precision { get; private set; } = PostTrain.Core.Precision.Precision.Fp32;

    /// <summary>Under Fp8: the smallest width (the lesser of a linear layer's in and out features; of the routed
    /// experts' hidden and intermediate sizes) a layer needs to run its GEMMs in FP8; narrower layers run in bf16.
    /// 0 (the default): every linear layer and expert set, DeepSeek-V3's recipe.</summary>
    public int Fp8MinDim { get; private set; }

    /// <summary>Sets the compute precision: Fp32 (fp32 activations), Bf16 (bf16 activations and GEMMs) or Fp8
    /// (bf16 activations, FP8 GEMMs in every linear layer and expert except the output head, embedding and router;
    /// with <paramref name="fp8MinDim"/> &gt; 0 only in those at least that wide, the rest in bf16: small GEMMs do not
    /// pay for their quantisation, as torchao's float8 module filter and torchtitan's size filter also assume).
    /// Master weights stay fp32 in every mode.</summary>
    public void SetPrecision(PostTrain.Core.Precision.Precision p, int fp8MinDim = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fp8MinDim);
        Precision = p;
        Fp8MinDim = fp8MinDim;
        ComputeDtype = p == PostTrain.Core.Precision.Precision.Fp32 ? ScalarType.Float32 : ScalarType.BFloat16;
        PostTrain.Core.Precision.Precision Mode(int width) =>
            p == PostTrain.Core.Precision.Precision.Fp8 && width >= fp8MinDim ? p : PostTrain.Core.Precision.Precision.Fp32;
        foreach (var (_, m) in named_modules())
        {
            if (m is Linear l) l.Precision = Mode(Math.Min(l.InFeatures, l.OutFeatures));
            else if (m is Experts e) e.Precision = Mode(Math.Min(e.Hidden, e.Intermediate));
        }
    }

    /// <summary>How many of the model's linear layers and routed-expert sets run in FP8, and how many not.</summary>
    public (int Fp8, int Other) Fp8Layers()
    {
        int fp8 = 0, other = 0;
        foreach (var (_, m) in named_modules())
        {
            var mode = m switch { Linear l => l.Precision, Experts e => e.Precision, _ => (PostTrain.Core.Precision.Precision?)null };
            if (mode is null) continue;
            if (mode == PostTrain.Core.Precision.Precision.Fp8) fp8++;
            else other++;
        }
        return (fp8, other);
    }
}
