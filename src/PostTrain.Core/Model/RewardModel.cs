// A scalar reward model: the DeepSeek-V3 backbone's final normed hidden states and a `score` head (hidden -> 1, no
// bias) read at the last real token of each sequence, as transformers' *ForSequenceClassification models do with
// num_labels = 1. The backbone is a DeepSeekForCausalLM built without its output head and MTP modules
// (tie_word_embeddings on, num_nextn_predict_layers 0), so no vocabulary logits are ever computed; on disk the weights
// are `model.*` + `score.weight` (RewardModelFiles). Which token is "last" follows the attention mask:
//   none           -> the last column of each row;
//   key padding    -> the last position whose mask is 1 (right or left padding alike); positions count real tokens
//                     from 0, so a left-padded row scores as it would alone;
//   segment ids    -> one reward per packed segment (its last token), rows first, then segments in order.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using PrecisionMode = PostTrain.Core.Precision.Precision;

namespace PostTrain.Core.Model;

public sealed class RewardModel : nn.Module<Tensor, Tensor>
{
    private readonly DeepSeekForCausalLM backbone;   // saved as model.* (its DecoderStack)
    private readonly Linear score;                   // (1, H), saved as score.weight

    /// <summary>The configuration as written in config.json (the source model's, head and MTP fields included).</summary>
    public ModelConfig Config { get; }

    public RewardModel(ModelConfig config, Device? device = null) : base(nameof(RewardModel))
    {
        Config = config;
        backbone = new DeepSeekForCausalLM(BackboneConfig(config), device);
        score = new Linear(config.HiddenSize, 1, hasBias: false, device: device);
        RegisterComponents();
    }

    /// <summary>The config the backbone is built with: no separate output head, no MTP modules.</summary>
    public static ModelConfig BackboneConfig(ModelConfig c) => c with { TieWordEmbeddings = true, NumNextnPredictLayers = 0 };

    public DeepSeekForCausalLM Backbone => backbone;
    public Parameter ScoreWeight => score.Weight;

    public override Tensor forward(Tensor inputIds) => Forward(inputIds);

    /// <summary>Rewards (N,) fp32: one per row, or one per segment for packed rows (see the file header).
    /// inputIds (B, T) int64; positionIds default to 0..T-1, or to the count of real tokens before each position under
    /// key padding; packed rows (segment ids) must pass theirs.</summary>
    public Tensor Forward(Tensor inputIds, AttentionMask? mask = null, Tensor? positionIds = null)
    {
        using var scope = NewDisposeScope();
        long B = inputIds.shape[0], T = inputIds.shape[1];
        mask ??= AttentionMask.Causal;
        if (mask.SegmentIds is not null && positionIds is null)
            throw new ArgumentException("packed rows (segment ids) need their position ids", nameof(positionIds));
        if (mask.KeyPadding is { } kp && positionIds is null)
            positionIds = (kp.to(ScalarType.Int64).cumsum(1) - 1).clamp_min(0);
        var hidden = backbone.NormedHidden(inputIds, positionIds, mask);              // (B, T, H)
        var last = LastTokenIndices(mask, B, T, inputIds.device);                       // (N,) into B*T
        var pooled = hidden.reshape(B * T, -1).index_select(0, last).to(ScalarType.Float32);   // (N, H)
        return score.forward(pooled).squeeze(-1).MoveToOuterDisposeScope();            // (N,)
    }

    /// <summary>Flat indices (into B*T, row-major) of the token each reward is read at (see the file header).</summary>
    public static Tensor LastTokenIndices(AttentionMask mask, long batch, long length, Device device)
    {
        using var scope = NewDisposeScope();
        Tensor flat;
        if (mask.SegmentIds is { } seg)
        {
            // a real token whose successor belongs to another segment (or is past the end) ends its segment
            var next = cat([seg.narrow(1, 1, length - 1), full(batch, 1, -1L, dtype: seg.dtype, device: device)], 1);
            var isLast = (seg >= 0).logical_and(next != seg);
            flat = isLast.reshape(-1).nonzero().squeeze(1);
        }
        else if (mask.KeyPadding is { } kp)
        {
            var pos = arange(length, device: device).unsqueeze(0).expand(batch, length);
            var lastPos = where(kp.to(ScalarType.Bool), pos, full_like(pos, -1L)).amax([1L]);   // (B,)
            if ((lastPos < 0).any().item<bool>())
                throw new ArgumentException("a row of the key-padding mask has no real token to read a reward at", nameof(mask));
            flat = arange(batch, device: device) * length + lastPos;
        }
        else flat = arange(batch, device: device) * length + (length - 1);
        return flat.MoveToOuterDisposeScope();
    }

    /// <summary>Draws the score head from normal(0, std) with its own generator (the global RNG is untouched).</summary>
    public void InitScore(double std, long seed)
    {
        using var _ = no_grad();
        var g = new Generator((ulong)seed, device: CPU);
        var w = normal(0.0, std, [1, Config.HiddenSize], generator: g);
        score.Weight.copy_(w);
    }

    /// <summary>Fp32, Bf16 or Fp8 for the backbone (fp8MinDim: DeepSeekForCausalLM.SetPrecision's); the score head
    /// always computes in fp32.</summary>
    public void SetPrecision(PrecisionMode p, int fp8MinDim = 0) => backbone.SetPrecision(p, fp8MinDim);

    public long ParameterCount() => parameters().Sum(p => p.numel());
}
