using PostTrain.Core.Generation;
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Generation;

public sealed class CachedDecodingTests
{
    /// <summary>Left-padded batch of different prompt lengths: prefill then 6 forced decode steps through the latent
    /// cache (absorbed attention) must give the full forward's logits at every position, for the main model and the
    /// MTP module, with the all-experts MoE path (large limit) and the routed path (limit 0), and the prefill in the
    /// expanded (SDPA) and the absorbed form, and the absorbed attention with its folded weights (W_k in the query
    /// projection, W_v in o_proj) and without (FoldedMaxBytes 0: the two-step products).</summary>
    [Theory]
    [InlineData("micro", 1L << 26, false, true)]
    [InlineData("micro", 0L, true, true)]
    [InlineData("noqlora_yarn", 1L << 26, false, true)]
    [InlineData("noqlora_yarn", 0L, true, true)]
    [InlineData("micro", 1L << 26, true, false)]
    [InlineData("noqlora_yarn", 0L, true, false)]
    public void CachedLogitsEqualFullForward(string modelName, long denseMoeLimit, bool absorbedPrefill, bool folded)
    {
        using var _ = folded ? AbsorbedAttention.OverrideFolding(AbsorbedAttention.FoldedMaxBytes, onCpu: true)
            : AbsorbedAttention.OverrideFolding(0, onCpu: false);
        CachedLogitsEqualFullForwardCore(modelName, denseMoeLimit, absorbedPrefill);
    }

    private static void CachedLogitsEqualFullForwardCore(string modelName, long denseMoeLimit, bool absorbedPrefill)
    {
        using var _ = no_grad();
        var m = modelName == "micro" ? GenTestModels.Micro(5) : GenTestModels.NoQLoraYarn(5);
        var prompts = GenTestModels.Prompts(1, 3, 7, 5);
        var cont = GenTestModels.Prompts(2, 6, 6, 6);
        var stats = new GenerationStats();
        using var w = new InferenceWeights(ScalarType.Float32);
        var cm = new CachedModel(m, w, new PhaseTimer(false, CPU, stats), denseMoeLimit, absorbedPrefill);
        using var batch = new PromptBatch(prompts, CPU);
        int P = batch.MaxLength, B = prompts.Length, steps = 6;
        using var cache = cm.NewCache(B, P + steps, withMtp: true, CPU);

        var full = prompts.Select((p, b) => GenTestModels.FullLogits(m, p.Concat(cont[b]))).ToArray();   // (L+6, V)
        var fullMtp = prompts.Select((p, b) =>
            m.Forward(tensor(p.Concat(cont[b]).Select(i => (long)i).ToArray()).view(1, -1), computeMtp: true).MtpLogits[0][0]).ToArray();

        cache.MarkNew(batch.Valid);
        var bias = cache.Bias(P);
        var hidden = cm.Extend(batch.Ids, batch.Positions, cache, bias);
        var logits = cm.Logits(hidden);                                                   // (B, P, V)
        var ahead = new long[B * P];
        for (int b = 0; b < B; b++)
            for (int j = 0; j < P; j++)
            {
                int pad = P - prompts[b].Length, k = j - pad;
                ahead[b * P + j] = k < 0 ? 0 : (k + 1 < prompts[b].Length ? prompts[b][k + 1] : cont[b][0]);
            }
        var (_, mtpLogits) = cm.ExtendMtp(hidden, tensor(ahead).view(B, P), batch.Positions, cache, bias, lastOnly: false);
        cache.Advance(P);
        for (int b = 0; b < B; b++)
        {
            int L = prompts[b].Length, pad = P - L;
            AssertClose(full[b].narrow(0, 0, L), logits[b].narrow(0, pad, L), $"prefill row {b}");
            AssertClose(fullMtp[b].narrow(0, 0, L), mtpLogits[b].narrow(0, pad, L), $"MTP prefill row {b}");
        }

        var pos = batch.Lengths.clone();
        for (int t = 0; t < steps; t++)
        {
            var ids = tensor(cont.Select(c => (long)c[t]).ToArray()).view(B, 1);
            cache.MarkNew(ones(B, 1, dtype: ScalarType.Bool));
            bias = cache.Bias(1);
            hidden = cm.Extend(ids, pos.view(B, 1), cache, bias);
            var step = cm.Logits(hidden);                                                 // (B, 1, V)
            var next = tensor(cont.Select(c => (long)c[Math.Min(t + 1, steps - 1)]).ToArray()).view(B, 1);
            var (_, stepMtp) = cm.ExtendMtp(hidden, next, pos.view(B, 1), cache, bias, lastOnly: false);
            cache.Advance(1);
            for (int b = 0; b < B; b++)
            {
                int L = prompts[b].Length;
                AssertClose(full[b][L + t], step[b][0], $"decode step {t} row {b}");
                if (t + 1 < steps) AssertClose(fullMtp[b][L + t], stepMtp[b][0], $"MTP decode step {t} row {b}");
            }
            pos = pos + 1;
        }
        Assert.Equal(new long[] { 3 + steps, 7 + steps, 5 + steps }, cache.Lengths().data<long>().ToArray());
    }

    /// <summary>bf16 compute (weights cast once, activations bf16 after every norm) stays close to the fp32 model.</summary>
    [Fact]
    public void Bf16CachedLogitsStayCloseToFp32()
    {
        using var _ = no_grad();
        var m = GenTestModels.Micro(8);
        var prompts = GenTestModels.Prompts(4, 5, 9);
        using var w = new InferenceWeights(ScalarType.BFloat16);
        var cm = new CachedModel(m, w, new PhaseTimer(false, CPU, new GenerationStats()), 1L << 26);
        using var batch = new PromptBatch(prompts, CPU);
        using var cache = cm.NewCache(2, batch.MaxLength, withMtp: false, CPU);
        cache.MarkNew(batch.Valid);
        var logits = cm.Logits(cm.Extend(batch.Ids, batch.Positions, cache, cache.Bias(batch.MaxLength)));   // (B, P, V)
        Assert.Equal(ScalarType.Float32, logits.dtype);
        for (int b = 0; b < 2; b++)
        {
            int L = prompts[b].Length;
            var full = GenTestModels.FullLogits(m, prompts[b]);
            double scale = full.abs().max().item<float>();
            AssertClose(full, logits[b].narrow(0, batch.MaxLength - L, L), $"bf16 row {b}", tol: 0.05 * scale);
        }
    }

    [Fact]
    public void CompactedRowsKeepTheirCache()
    {
        using var _ = no_grad();
        var m = GenTestModels.Micro(6);
        var prompts = GenTestModels.Prompts(3, 4, 2, 6);
        using var w = new InferenceWeights(ScalarType.Float32);
        var cm = new CachedModel(m, w, new PhaseTimer(false, CPU, new GenerationStats()), 1L << 26);
        using var batch = new PromptBatch(prompts, CPU);
        int P = batch.MaxLength;
        using var cache = cm.NewCache(3, P + 1, withMtp: false, CPU);
        cache.MarkNew(batch.Valid);
        cm.Extend(batch.Ids, batch.Positions, cache, cache.Bias(P));
        cache.Advance(P);
        cache.KeepRows(tensor(new long[] { 2, 0 }));                                      // drop row 1, reorder
        cache.MarkNew(ones(2, 1, dtype: ScalarType.Bool));
        var logits = cm.Logits(cm.Extend(tensor(new long[] { 17, 99 }).view(2, 1), tensor(new long[] { 6, 4 }).view(2, 1), cache, cache.Bias(1)));
        AssertClose(GenTestModels.FullLogits(m, prompts[2].Append(17))[-1], logits[0][0], "kept row 2");
        AssertClose(GenTestModels.FullLogits(m, prompts[0].Append(99))[-1], logits[1][0], "kept row 0");
    }

    [Fact]
    public void CacheRejectsWritesBeyondCapacity()
    {
        using var cache = new LatentKvCache(1, 2, 3, 4, 2, ScalarType.Float32, CPU);
        cache.MarkNew(ones(2, 3, dtype: ScalarType.Bool));
        cache.Advance(3);
        var e = Assert.Throws<InvalidOperationException>(() => cache.Append(0, zeros(2, 1, 6)));
        Assert.Contains("capacity 3", e.Message);
    }

    /// <summary>Device-column mode with two new columns (speculative verification): the bias spans the capacity, a
    /// query sees the valid columns up to its own (not the draft after it), and re-marking a column invalid hides it.</summary>
    [Fact]
    public void TwoDeviceColumnsBiasIsCausalAndFollowsValidity()
    {
        using var cache = new LatentKvCache(1, 2, 7, 4, 2, ScalarType.Float32, CPU);
        cache.MarkNew(tensor(new[] { false, true, true, true, true, true }).view(2, 3));   // row 0 left-padded
        cache.Advance(3);
        using var cols = tensor(new long[] { 3, 4 });
        cache.DeviceColumns = cols;
        cache.MarkNew(ones(2, 2, dtype: ScalarType.Bool));
        var first = cache.Bias(2);                                                    // (2, 1, 2, 7)
        cache.MarkNew(tensor(new[] { true, false, true, true }).view(2, 2));          // row 0's draft rejected
        var second = cache.Bias(2);
        cache.DeviceColumns = null;
        double o = 0, x = double.NegativeInfinity;
        double[] expectFirst = [x, o, o, o, x, x, x,   x, o, o, o, o, x, x,           // row 0: query at 3, at 4
                                o, o, o, o, x, x, x,   o, o, o, o, o, x, x];          // row 1
        double[] expectSecond = [x, o, o, o, x, x, x,   x, o, o, o, x, x, x,
                                 o, o, o, o, x, x, x,   o, o, o, o, o, x, x];
        Assert.Equal(expectFirst, first.to(ScalarType.Float64).data<double>().ToArray());
        Assert.Equal(expectSecond, second.to(ScalarType.Float64).data<double>().ToArray());
    }

    internal static void AssertClose(Tensor expected, Tensor actual, string what, double tol = 1e-4)
    {
        double diff = (expected - actual).abs().max().item<float>();
        Assert.True(diff < tol, $"{what}: max |diff| {diff:E2} >= {tol:E0}");
    }
}
