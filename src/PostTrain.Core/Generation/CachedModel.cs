// The model run incrementally over a LatentKvCache: embeddings, decoder blocks with absorbed MLA attention, the
// final norm and head, and the first MTP module (for speculative drafting). Numerically the same computation as
// DeepSeekForCausalLM.Forward (tested to fp32 rounding), except that bf16 compute keeps activations in bf16 after
// each RMSNorm as Hugging Face does. Only the first MTP module is used (V3 has one).
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Generation;

internal sealed class CachedModel(DeepSeekForCausalLM model, InferenceWeights w, PhaseTimer timer, long denseMoeMaxElements,
    bool absorbedPrefill = false)
{
    private readonly ModelConfig c = model.Config;
    /// <summary>For each decoder layer, its index among the MoE layers (-1 for dense ones).</summary>
    private readonly int[] moeOrdinal = MoeOrdinals(model);

    public int MoeLayerCount => moeOrdinal.Count(o => o >= 0);

    private static int[] MoeOrdinals(DeepSeekForCausalLM model)
    {
        int next = 0;
        return model.Model.Layers.Select(l => l.Ffn is MoE ? next++ : -1).ToArray();
    }

    public DeepSeekForCausalLM Model => model;
    public int MainLayers => c.NumHiddenLayers;
    public bool HasMtp => model.Mtp.Count > 0;

    /// <summary>A cache sized for this model (plus the MTP block's layer when asked).</summary>
    public LatentKvCache NewCache(long batch, int capacity, bool withMtp, Device device) =>
        new(c.NumHiddenLayers + (withMtp ? 1 : 0), batch, capacity, c.KvLoraRank, c.QkRopeHeadDim, w.Dtype, device);

    /// <summary>ids (B, T) at positions (B, T) -> hidden (B, T, H) before the final norm. Writes the main layers' cache
    /// columns at the cursor (the caller marks validity, builds <paramref name="bias"/> and advances).</summary>
    public Tensor Extend(Tensor ids, Tensor positions, LatentKvCache cache, Tensor bias)
    {
        using var scope = NewDisposeScope();
        var (cos, sin) = Angles(positions);                                           // (B, 1, T, dr/2)
        var hdn = Embed(ids);                                                         // (B, T, H)
        for (int i = 0; i < model.Model.Layers.Count; i++)
        {
            var layer = model.Model.Layers[i];
            hdn = Block(hdn, layer.InputNorm, layer.Attention, layer.PostAttentionNorm, layer.Ffn, cos, sin, cache, i, bias);
        }
        return hdn.MoveToOuterDisposeScope();
    }

    /// <summary>hidden (B, T, H) before the final norm -> fp32 logits (B, T, V).</summary>
    public Tensor Logits(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        using var _ = timer.Phase("head");
        var normed = AbsorbedAttention.Norm(w, model.Model.Norm, hidden);
        return nn.functional.linear(normed, w[model.HeadWeight]).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>The first MTP module at T columns: hPrev (B, T, H) main hidden states at those columns, nextIds (B, T)
    /// the tokens one ahead -> (its hidden (B, T, H), fp32 logits (B, T, V) predicting two ahead). Writes cache layer L.</summary>
    public (Tensor Hidden, Tensor Logits) ExtendMtp(Tensor hPrev, Tensor nextIds, Tensor positions, LatentKvCache cache, Tensor bias, bool lastOnly)
    {
        using var scope = NewDisposeScope();
        var m = model.Mtp[0];
        Tensor x;
        using (timer.Phase("mtp"))
        {
            var (cos, sin) = Angles(positions);
            var e = AbsorbedAttention.Norm(w, m.EmbedNorm, Embed(nextIds));
            var hh = AbsorbedAttention.Norm(w, m.HiddenNorm, hPrev.to(w.Dtype));
            x = AbsorbedAttention.Lin(w, m.EhProj, cat([e, hh], -1));                 // (B, T, H)
            x = Block(x, m.InputNorm, m.Attention, m.PostAttentionNorm, m.Ffn, cos, sin, cache, c.NumHiddenLayers, bias, timed: false);
        }
        var last = lastOnly ? x.narrow(1, x.shape[1] - 1, 1) : x;
        Tensor logits;
        using (timer.Phase("head"))
        {
            var normed = AbsorbedAttention.Norm(w, m.HeadNorm, last);
            logits = nn.functional.linear(normed, w[model.HeadWeight]).to(ScalarType.Float32);
        }
        return (x.MoveToOuterDisposeScope(), logits.MoveToOuterDisposeScope());
    }

    /// <summary>Rotary.Angles with the inverse frequencies kept on the device (Rotary.Angles copies them from the host
    /// on every call, and a host-to-device copy synchronises the CUDA stream).</summary>
    private (Tensor Cos, Tensor Sin) Angles(Tensor positions)
    {
        var inv = w.Derived("rope.inv_freq", () => tensor(Rotary.ComputeInvFreq(c).InvFreq, device: positions.device)); // (dr/2)
        double factor = model.Rotary.AttentionFactor;
        var freqs = positions.to(ScalarType.Float32).unsqueeze(-1) * inv;            // (B, T, dr/2)
        return ((freqs.cos() * factor).unsqueeze(1), (freqs.sin() * factor).unsqueeze(1));
    }

    private Tensor Embed(Tensor ids)
    {
        var table = model.Model.Embed.Weight;                                         // (V, H) fp32 master
        return table.index_select(0, ids.reshape(-1)).view(ids.shape[0], ids.shape[1], table.shape[1]).to(w.Dtype);
    }

    private Tensor Block(Tensor x, RMSNorm inNorm, MlaAttention attn, RMSNorm postNorm, nn.Module<Tensor, Tensor> ffn,
        Tensor cos, Tensor sin, LatentKvCache cache, int layer, Tensor bias, bool timed = true)
    {
        using var scope = NewDisposeScope();
        // x is this block's own input (the embedding or the previous block's output, read by nothing else): attention and
        // FFN accumulate into its storage (their last GEMMs take it as the residual), so no add and no new hidden state
        Tensor h;
        using (timed ? timer.Phase("attention") : default)
            h = AbsorbedAttention.Forward(attn, w, AbsorbedAttention.Norm(w, inNorm, x), x, cos, sin, model.Rotary, cache, layer, bias, absorbedPrefill);
        Tensor outp;
        using (timed ? timer.Phase(ffn is MoE ? "moe" : "mlp") : default)
            outp = DecodeFfn.Forward(ffn, w, c, AbsorbedAttention.Norm(w, postNorm, h), h, denseMoeMaxElements);
        if (cache.RecordsRouting && ffn is MoE moe && layer < c.NumHiddenLayers && moeOrdinal[layer] >= 0)
            cache.AppendExperts(moeOrdinal[layer], moe.Gate.LastChoice!.view(x.shape[0], x.shape[1], c.NumExpertsPerTok));
        return outp.MoveToOuterDisposeScope();
    }
}
