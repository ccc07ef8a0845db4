// Routing replay (R3) pieces: the experts recorded while generating (eager and static decode steps, with stops and
// mid-decode compaction) equal the experts a full forward over the same tokens chooses, and a router given replayed
// experts uses them, with gate weights from its current scores, and still receives gradient.
using PostTrain.Core.Generation;
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Generation;

public sealed class RoutingReplayTests
{
    private static Router[] MainRouters(DeepSeekForCausalLM m) =>
        m.Model.Layers.Select(l => l.Moe).Where(x => x is not null).Select(x => x!.Gate).ToArray();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Recorded_routing_equals_the_routing_of_a_full_forward(bool staticStep)
    {
        var m = GenTestModels.Micro(41);
        var routers = MainRouters(m);
        Assert.NotEmpty(routers);
        var prompts = GenTestModels.Prompts(12, 3, 7, 5, 2);
        var free = new TokenGenerator(m).Generate(prompts, SamplingParams.Greedy(8) with { StopTokenIds = [] });
        var p = SamplingParams.Greedy(8) with { StopTokenIds = [free[1].TokenIds[2]] };   // row 1 stops early: compaction
        var gen = new TokenGenerator(m, new GenerationOptions { RecordRouting = true, CompactFinishedFraction = 0.01, StaticDecodeStep = staticStep });
        var results = gen.Generate(prompts, p);
        Assert.Contains(results, r => r.TokenIds.Length < 8);
        Assert.All(routers, r => Assert.Null(r.LastChoice));                 // generation leaves the routers as they were

        int k = m.Config.NumExpertsPerTok;
        for (int i = 0; i < prompts.Length; i++)
        {
            var trace = results[i].Routing!;
            var fed = prompts[i].Concat(results[i].TokenIds.SkipLast(1)).Select(x => (long)x).ToArray();
            Assert.Equal(fed.Length, trace.Positions);
            Assert.Equal(routers.Length, trace.MoeLayers);
            using var scope = NewDisposeScope();
            using (no_grad())
            {
                foreach (var r in routers) r.KeepLastChoice = true;
                m.Forward(tensor(fed).view(1, -1));
            }
            for (int l = 0; l < routers.Length; l++)
            {
                var own = routers[l].LastChoice!.data<long>().ToArray();      // (T, k)
                for (int pos = 0; pos < fed.Length; pos++)
                {
                    var expected = own.Skip(pos * k).Take(k).Order().ToArray();
                    var got = Enumerable.Range(0, k).Select(j => (long)trace.Expert(l, pos, j)).Order().ToArray();
                    Assert.True(expected.SequenceEqual(got), $"row {i}, layer {l}, position {pos}: [{string.Join(",", got)}] vs full forward [{string.Join(",", expected)}]");
                }
            }
            foreach (var r in routers) r.ClearLastChoice();
        }
    }

    [Fact]
    public void Replayed_experts_are_used_with_weights_from_current_scores_and_the_router_gets_gradient()
    {
        var cfg = BuiltinModels.Micro();
        using var router = new Router(cfg);
        using (no_grad()) router.Weight.normal_(0, 0.5, generator: new TorchSharp.torch.Generator(3));
        var x = randn([5, cfg.HiddenSize], generator: new TorchSharp.torch.Generator(4));
        int k = cfg.NumExpertsPerTok, E = cfg.NRoutedExperts;
        var (own, _, _) = router.Route(x);
        var forcedRows = Enumerable.Range(0, 5).Select(r => r == 4 ? Enumerable.Repeat(-1L, k) : Enumerable.Range(0, k).Select(j => (long)((r + 2 * j) % E))).ToArray();
        router.ReplayExperts = tensor(forcedRows.SelectMany(v => v).ToArray(), [5, k]);
        var (idx, w, scores) = router.Route(x);

        var got = idx.data<long>().ToArray();
        for (int r = 0; r < 4; r++) Assert.Equal(forcedRows[r], got.Skip(r * k).Take(k));
        Assert.Equal(own.data<long>().Skip(4 * k).Take(k), got.Skip(4 * k).Take(k));       // -1 row: the router's own choice
        Assert.Equal(own.data<long>().ToArray(), router.LastChoice!.data<long>().ToArray());

        var expected = scores.gather(1, idx);
        if (cfg.NormTopkProb) expected = expected / (expected.sum(-1, keepdim: true) + 1e-20);
        expected = expected * cfg.RoutedScalingFactor;
        Assert.True(allclose(w, expected, rtol: 1e-6, atol: 1e-7));

        w.sum().backward();
        Assert.NotNull(router.Weight.grad);
        Assert.True(router.Weight.grad!.abs().sum().item<float>() > 0);
        router.ReplayExperts = null;
        router.ClearLastChoice();
    }
}
