// Activation recompute on the test models (micro MoE: q LoRA, group-limited sigmoid routing, MTP; the no-q-LoRA YaRN
// model with tied embeddings), fp32 on the CPU: for selective and layer recompute, the training loss (main + MTP +
// sequence-wise balance loss, packed segments) and every parameter gradient equal the plain forward's to 1e-6
// relative, the aux-loss-free load counts are the same (the replay does not count twice), and backward replays each
// recompute region once (regions counted by hand from the architecture). Also: LoRA adapters with dropout (attention,
// dense and routed experts) on a frozen base; routing replay switched off before backward (as GRPO does) still
// backpropagates through the forward's experts; gradient-ready marks see each layer's gradients complete; forwards
// without autograd are unchanged and replay nothing.
using PostTrain.Core.Distributed;
using PostTrain.Core.Model;
using PostTrain.Core.Recompute;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Recompute;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GlobalRngCollection
{
    public const string Name = "torch global RNG (LoRA dropout)";
}

[Collection(GlobalRngCollection.Name)]
public sealed class RecomputeModelTests
{
    private const double Rel = 1e-6;

    private static DeepSeekForCausalLM Micro()
    {
        var m = new DeepSeekForCausalLM(BuiltinModels.Micro());
        m.InitWeights(0.2, 5);
        return m;
    }

    private static DeepSeekForCausalLM NoQLoraYarn()
    {
        var m = new DeepSeekForCausalLM(ModelConfig.Load(Path.Combine(AppContext.BaseDirectory, "Fixtures/parity/noqlora_yarn/config.json")));
        m.InitWeights(0.2, 6);
        return m;
    }

    private sealed record Pass(double Loss, Dictionary<string, Tensor> Grads, long[][] Loads, long Replays);

    // ids (2, 12) with two packed examples in row 0; loss = main CE + 0.3 MTP + balance loss (alpha 0.01)
    private static Pass Step(DeepSeekForCausalLM m, RecomputeMode mode, nn.Module? trained = null, long? dropoutSeed = null,
        Action? beforeBackward = null)
    {
        m.Recompute = mode;
        m.train();
        trained?.train();
        foreach (var moe in m.MoeLayers()) { moe.BalanceAlpha = 0.01; moe.TakeLoads(); }
        var gen = new Generator(17);
        var ids = randint(1, m.Config.VocabSize, [2, 12], generator: gen);
        var labels = cat([ids.narrow(1, 1, 11), full(2, 1, Losses.Ignore, dtype: ScalarType.Int64)], 1);
        var segments = tensor(new long[] { 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }).view(2, 12);
        if (dropoutSeed is long s) random.manual_seed(s);
        var output = m.Forward(ids, mask: new AttentionMask(null, segments), computeMtp: true);
        var parts = Losses.Compute(m, output, labels, segments);
        var loss = Losses.Total(parts, parts.MainCount, null, 0.3);
        beforeBackward?.Invoke();
        long before = ActivationRecompute.ReplaysOnThisThread;
        loss.backward();
        long replays = ActivationRecompute.ReplaysOnThisThread - before;
        var grads = (trained ?? m).named_parameters().Where(p => p.parameter.grad is not null)
            .ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        foreach (var p in (trained ?? m).parameters()) p.grad = null;
        var loads = m.MoeLayers().Select(l => l.TakeLoads()).ToArray();
        m.Recompute = RecomputeMode.None;
        return new Pass(loss.item<float>(), grads, loads, replays);
    }

    private static void AssertSame(Pass plain, Pass other, string what)
    {
        Assert.True(Math.Abs(plain.Loss - other.Loss) <= Rel * Math.Abs(plain.Loss), $"{what}: loss {other.Loss:R}, plain {plain.Loss:R}");
        Assert.Equal(plain.Grads.Keys.Order(), other.Grads.Keys.Order());
        foreach (var (name, g) in plain.Grads)
        {
            double scale = g.abs().max().item<float>(), err = (other.Grads[name] - g).abs().max().item<float>();
            Assert.True(err <= Rel * scale, $"{what}: {name}: max |diff| {err:E3}, max |grad| {scale:E3}");
        }
        Assert.Equal(plain.Loads, other.Loads);
    }

    [Theory]
    [InlineData("micro", RecomputeMode.Selective, 13)]   // 2 layers x (2 norms + MLA) + final norm + MTP (enorm, hnorm, 2 norms, MLA, head norm)
    [InlineData("micro", RecomputeMode.Layer, 3)]        // 2 decoder layers + the MTP module
    [InlineData("noqlora", RecomputeMode.Selective, 19)] // 4 x 3 + 1 + 6
    [InlineData("noqlora", RecomputeMode.Layer, 5)]
    public void Loss_gradients_and_loads_equal_the_plain_forward(string model, RecomputeMode mode, long regions)
    {
        using var m = model == "micro" ? Micro() : NoQLoraYarn();
        var plain = Step(m, RecomputeMode.None);
        Assert.Equal(0, plain.Replays);
        Assert.Equal(m.parameters().Count(p => p.requires_grad), plain.Grads.Count);
        Assert.True(plain.Loads.All(l => l.Sum() > 0));
        var other = Step(m, mode);
        Assert.Equal(regions, other.Replays);
        AssertSame(plain, other, $"{model} {mode}");
    }

    [Theory]
    [InlineData(RecomputeMode.Selective)]
    [InlineData(RecomputeMode.Layer)]
    public void Lora_adapters_with_dropout_on_a_frozen_base_get_the_plain_gradients(RecomputeMode mode)
    {
        using var m = Micro();
        using var lora = LoraAdapters.Attach(m, new LoraSettings(4, 8, 0.25,
            [.. LoraSettings.AttentionModules, "gate_proj", "up_proj", "down_proj"], RoutedExperts: true), seed: 2);
        var gen = new Generator(7);
        using (no_grad())
        {
            foreach (var (_, a) in lora.Entries) a.B.normal_(0, 0.05, generator: gen);
            foreach (var (_, _, a) in lora.ExpertEntries) a.B.normal_(0, 0.05, generator: gen);
        }
        var plain = Step(m, RecomputeMode.None, lora, dropoutSeed: 99);
        Assert.Equal(lora.parameters().Count(), plain.Grads.Count);   // every adapter, nothing of the base
        var other = Step(m, mode, lora, dropoutSeed: 99);
        AssertSame(plain, other, $"lora {mode}");
        var reseeded = Step(m, RecomputeMode.None, lora, dropoutSeed: 100);   // the masks matter: another seed differs
        Assert.NotEqual(plain.Loss, reseeded.Loss);
    }

    [Fact]
    public void Routing_replay_cleared_before_backward_backpropagates_through_the_forwards_experts()
    {
        using var m = Micro();
        var routers = m.Model.Layers.Select(l => l.Moe).Where(l => l is not null).Select(l => l!.Gate).ToArray();   // as GRPO: main layers
        Pass Run(RecomputeMode mode)
        {
            var gen = new Generator(23);
            foreach (var r in routers)
                r.ReplayExperts = stack(Enumerable.Range(0, 24).Select(_ => randperm(4, generator: gen).narrow(0, 0, 2)).ToArray());   // (N, 2)
            return Step(m, mode, beforeBackward: () => { foreach (var r in routers) r.ReplayExperts = null; });
        }
        var plain = Run(RecomputeMode.None);
        var free = Step(m, RecomputeMode.None);   // the router's own experts: a different function
        Assert.NotEqual(plain.Loss, free.Loss);
        AssertSame(plain, Run(RecomputeMode.Layer), "layer with routing replay");
    }

    [Theory]
    [InlineData(RecomputeMode.Selective)]
    [InlineData(RecomputeMode.Layer)]
    public void Gradient_ready_marks_see_each_layers_gradients_complete(RecomputeMode mode)
    {
        using var m = Micro();
        var layers = m.LayerParameters().Select(ps => ps.ToArray()).ToArray();
        var atSignal = new List<Tensor?>?[layers.Length];
        m.LayerInputMarker = (i, h) => GradientReadyFunction.Mark(h, () => atSignal[i] = layers[i].Select(p => p.grad?.clone()).ToList());
        Step(m, mode);   // Step clears the gradients after reading them: read them again from a second pass
        m.Recompute = mode;
        m.train();
        var ids = randint(1, m.Config.VocabSize, [2, 12], generator: new Generator(5));
        var (sum, count) = Losses.CrossEntropySum(m.Forward(ids).Logits, ids);
        (sum / count).backward();
        for (int i = 0; i < layers.Length; i++)
        {
            Assert.NotNull(atSignal[i]);
            for (int j = 0; j < layers[i].Length; j++)
            {
                var final = layers[i][j].grad;
                Assert.NotNull(final);
                Assert.NotNull(atSignal[i]![j]);
                Assert.True(final!.eq(atSignal[i]![j]!).all().item<bool>(), $"layer {i} parameter {j}: gradient changed after its mark");
            }
        }
    }

    [Theory]
    [InlineData(RecomputeMode.Selective)]
    [InlineData(RecomputeMode.Layer)]
    public void Forwards_without_autograd_are_unchanged_and_replay_nothing(RecomputeMode mode)
    {
        using var m = Micro();
        m.train();
        var ids = randint(1, m.Config.VocabSize, [2, 9], generator: new Generator(3));
        using var _ = no_grad();
        var plain = m.Forward(ids, computeMtp: true);
        m.Recompute = mode;
        long before = ActivationRecompute.ReplaysOnThisThread;
        var other = m.Forward(ids, computeMtp: true);
        Assert.Equal(before, ActivationRecompute.ReplaysOnThisThread);
        Assert.True(plain.Logits.eq(other.Logits).all().item<bool>());
        Assert.True(plain.MtpLogits[0].eq(other.MtpLogits[0]).all().item<bool>());
    }
}
