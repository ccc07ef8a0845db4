using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Model;

public sealed class ModelBehaviourTests
{
    static DeepSeekForCausalLM Micro(long seed = 7, ModelConfig? cfg = null)
    {
        var m = new DeepSeekForCausalLM(cfg ?? BuiltinModels.Micro());
        m.InitWeights(0.2, seed);
        m.eval();
        return m;
    }

    [Fact]
    public void MaskBuildsBlockDiagonalCausalWithPadding()
    {
        var seg = tensor(new long[] { 0, 0, 1, 1 }).view(1, 4);
        var m = new AttentionMask(SegmentIds: seg).Build(1, 4, 4, CPU).view(4, 4).to(ScalarType.Int32).data<int>().ToArray();
        int[] expected = [1, 0, 0, 0,
                          1, 1, 0, 0,
                          0, 0, 1, 0,
                          0, 0, 1, 1];
        Assert.Equal(expected, m);
        var pad = tensor(new long[] { 0, 1, 1, 1 }).view(1, 4);
        var p = new AttentionMask(KeyPadding: pad).Build(1, 4, 4, CPU).view(4, 4).to(ScalarType.Int32).data<int>().ToArray();
        int[] expectedPad = [1, 0, 0, 0,     // a pad query attends to itself only (stays finite)
                             0, 1, 0, 0,
                             0, 1, 1, 0,
                             0, 1, 1, 1];
        Assert.Equal(expectedPad, p);
    }

    [Fact]
    public void PackedSequencesGiveTheSameLogitsAsSeparateOnes()
    {
        using var _ = no_grad();
        var m = Micro();
        var a = tensor(new long[] { 5, 17, 99, 3, 42 }).view(1, 5);
        var b = tensor(new long[] { 8, 250, 11 }).view(1, 3);
        var la = m.Forward(a).Logits;
        var lb = m.Forward(b).Logits;
        var packed = cat([a, b], 1);                                           // (1, 8)
        var pos = tensor(new long[] { 0, 1, 2, 3, 4, 0, 1, 2 }).view(1, 8);
        var seg = tensor(new long[] { 0, 0, 0, 0, 0, 1, 1, 1 }).view(1, 8);
        var lp = m.Forward(packed, pos, new AttentionMask(SegmentIds: seg)).Logits;
        Assert.True((lp.narrow(1, 0, 5) - la).abs().max().item<float>() < 1e-5);
        Assert.True((lp.narrow(1, 5, 3) - lb).abs().max().item<float>() < 1e-5);
    }

    [Fact]
    public void LeftPaddedRowMatchesTheUnpaddedRow()
    {
        using var _ = no_grad();
        var m = Micro(3);
        var ids = tensor(new long[] { 9, 10, 11, 12 }).view(1, 4);
        var solo = m.Forward(ids).Logits;
        var padded = tensor(new long[] { 0, 0, 9, 10, 11, 12 }).view(1, 6);
        var keep = tensor(new long[] { 0, 0, 1, 1, 1, 1 }).view(1, 6);
        var pos = tensor(new long[] { 0, 0, 0, 1, 2, 3 }).view(1, 6);
        var lp = m.Forward(padded, pos, new AttentionMask(KeyPadding: keep)).Logits;
        Assert.False(lp.isnan().any().item<bool>());
        Assert.True((lp.narrow(1, 2, 4) - solo).abs().max().item<float>() < 1e-5);
    }

    [Fact]
    public void GroupedExpertsMatchAPerTokenLoop()
    {
        using var _ = no_grad();
        var cfg = BuiltinModels.Micro();
        var moe = new MoE(cfg);
        foreach (var p in moe.parameters()) p.normal_(0, 0.3);
        moe.Gate.CorrectionBias!.copy_(tensor(new float[] { 0.1f, -0.2f, 0.05f, 0 }));
        var x = randn(2, 5, cfg.HiddenSize);
        var y = moe.forward(x);

        // independent per-token reference
        var flat = x.view(10, cfg.HiddenSize);
        var (idx, w, _) = moe.Gate.Route(flat);
        var expected = zeros(10, cfg.HiddenSize);
        var ew = moe.ExpertWeights;
        for (int t = 0; t < 10; t++)
        for (int j = 0; j < cfg.NumExpertsPerTok; j++)
        {
            long e = idx[t, j].item<long>();
            var xt = flat[t];
            var h = nn.functional.silu(ew.GateProj[e].matmul(xt)) * ew.UpProj[e].matmul(xt);
            expected[t] += ew.DownProj[e].matmul(h) * w[t, j];
        }
        var shared = y.view(10, -1) - expected;   // what remains must be the shared expert's output
        var sharedRef = moe.named_children().First(c => c.name == "shared_experts").module as Mlp;
        Assert.True((shared - sharedRef!.forward(flat)).abs().max().item<float>() < 1e-5);
        Assert.Equal(2 * 10, moe.TakeLoads().Sum());
    }

    [Fact]
    public void BalancerMovesBiasTowardsUnderloadedExperts()
    {
        var m = new DeepSeekForCausalLM(BuiltinModels.Micro());
        m.InitWeights(0.02, 1);
        using (no_grad()) m.Forward(randint(0, 263, [2, 16]));
        var moe = m.MoeLayers().First();
        // loads are private; compute the expected update from a second, identical forward's loads
        long[] loads = moe.TakeLoads();
        using (no_grad()) m.Forward(randint(0, 263, [2, 16]));
        var before = moe.Gate.CorrectionBias!.clone();
        var pending = (Tensor)typeof(MoE).GetField("loads", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(moe)!;
        long[] loads2 = pending.data<long>().ToArray();
        var ratios = MoeBalancer.Step(m, 0.01);
        var delta = (moe.Gate.CorrectionBias! - before).data<float>().ToArray();
        double mean = loads2.Average();
        for (int i = 0; i < delta.Length; i++)
            Assert.Equal(-0.01 * Math.Sign(loads2[i] - mean), delta[i], 6);
        Assert.Equal(loads2.Max() / mean, ratios[0], 9);
        Assert.True(loads.Sum() > 0);
        // gamma 0 freezes
        using (no_grad()) m.Forward(randint(0, 263, [2, 16]));
        var frozen = moe.Gate.CorrectionBias!.clone();
        MoeBalancer.Step(m, 0);
        Assert.Equal(frozen.data<float>().ToArray(), moe.Gate.CorrectionBias!.data<float>().ToArray());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LoadsCountRealTokensOnlyUnderAPaddingOrSegmentMask(bool packed)
    {
        // a padded batch (key padding, or packed segments with -1 on the padding) routes its padding like any token,
        // but the balancer's loads are those of the real tokens alone: equal to the loads of the same rows run one by
        // one without their padding (right padding never reaches a real token through causal attention), and 2 x 7
        // padding tokens fewer than every routed row of the padded forward
        var m = Micro(11);
        var ids = randint(1, 263, [2, 12]);
        var real = tensor(new long[] { 12, 5 });
        var valid = arange(12).unsqueeze(0).lt(real.unsqueeze(1));                                 // (2, 12)
        var mask = packed ? new AttentionMask(SegmentIds: where(valid, zeros(2, 12, dtype: ScalarType.Int64), full(2, 12, -1L)))
                          : new AttentionMask(KeyPadding: valid);
        void Clear() { foreach (var l in m.MoeLayers()) l.TakeLoads(); }
        Clear();
        long[][] Loads() => m.MoeLayers().Select(l => l.TakeLoads()).ToArray();
        using (no_grad()) m.Forward(ids, mask: mask, computeMtp: true);
        var masked = Loads();
        using (no_grad())
        {
            m.Forward(ids.narrow(0, 0, 1), computeMtp: true);
            var a = Loads();
            m.Forward(ids.narrow(0, 1, 1).narrow(1, 0, 5), computeMtp: true);
            var b = Loads();
            var alone = a.Zip(b, (x, y) => x.Zip(y, (p, q) => p + q).ToArray()).ToArray();
            int k = m.Config.NumExpertsPerTok;
            for (int layer = 0; layer < masked.Length; layer++)
            {
                Assert.Equal(alone[layer], masked[layer]);
                Assert.True(masked[layer].Sum() > 0, $"MoE layer {layer} saw no tokens");
            }
            // the decoder's MoE layers: 12 + 5 real tokens x k choices (without the mask: 24 x k)
            Assert.Equal(17L * k, masked[0].Sum());
        }
    }

    [Fact]
    public void MtpLogitsHaveShiftedLengthsAndTrainableGradients()
    {
        var m = Micro(5);
        m.train();
        var ids = randint(0, 263, [2, 12]);
        var o = m.Forward(ids, computeMtp: true);
        Assert.Single(o.MtpLogits);
        Assert.Equal(new long[] { 2, 11, 263 }, o.MtpLogits[0].shape);
        o.MtpLogits[0].sum().backward();
        var ehGrad = m.named_parameters().First(p => p.name == "mtp.0.eh_proj.weight").parameter.grad;
        Assert.NotNull(ehGrad);
        Assert.True(ehGrad!.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void TinyMoeHasAFewMillionParameters()
    {
        long n = new DeepSeekForCausalLM(BuiltinModels.TinyMoe(), new Device("meta")).ParameterCount();
        Assert.InRange(n, 1_000_000, 10_000_000);
    }
}
