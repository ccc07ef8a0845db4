// RecomputedExperts on the CPU: the function that gathers the experts' input and recomputes it and the SwiGLU output
// in backward gives the plain composition's outputs and gradients (an empty expert included), a whole model step takes
// it when asked and equals the plain step, and the GPU self-check of the grouped GEMMs names the GEMM a bug is put into.
using PostTrain.Core.Kernels;
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Model;

public sealed class RecomputedExpertsTests
{
    private static void Close(Tensor got, Tensor want, double tol, string what) => TensorAssert.Close(got, want, tol, what);

    [Theory]
    [InlineData(ScalarType.Float32, 1e-5)]
    [InlineData(ScalarType.BFloat16, 2e-2)]   // bf16 activations under fp32 weights (master weights): the weights cast for the GEMMs
    public void The_function_equals_dispatch_grouped_linears_and_swiglu_in_value_and_every_gradient(ScalarType act, double tol)
    {
        var gen = new Generator(5);
        const int n = 7, k = 2, h = 16, inter = 12, experts = 4;
        var x0 = randn(n, h, generator: gen).to(act);
        var gate0 = randn(experts, inter, h, generator: gen) * 0.3;
        var up0 = randn(experts, inter, h, generator: gen) * 0.3;
        var down0 = randn(experts, h, inter, generator: gen) * 0.3;
        // token choices that leave expert 1 without rows
        var idx = tensor(new long[] { 0, 2, 2, 3, 0, 3, 2, 0, 3, 2, 0, 2, 3, 0 }).view(n, k);
        var flatIdx = idx.reshape(-1);
        var order = flatIdx.sort(stable: true).Indices;
        var tokenOf = order.div(k, rounding_mode: RoundingMode.floor);
        var counts = zeros(experts, dtype: ScalarType.Int64).scatter_add_(0, flatIdx, ones_like(flatIdx));
        Assert.Equal(0L, counts[1].item<long>());
        var pos = TrainOps.InverseOrder(order, n, k);
        var upstream = randn(n * k, h, generator: gen);

        Tensor[] Leaves() => [x0.clone().requires_grad_(), gate0.clone().requires_grad_(), up0.clone().requires_grad_(), down0.clone().requires_grad_()];
        var a = Leaves();
        var xs = a[0].index_select(0, tokenOf);
        var groups = LoopGroupedGemms.Instance.Groups(counts);
        var plainG = LoopGroupedGemms.Instance.Forward(xs, a[1].to(act), groups);
        var plainU = LoopGroupedGemms.Instance.Forward(xs, a[2].to(act), groups);
        var plain = LoopGroupedGemms.Instance.Forward(nn.functional.silu(plainG) * plainU, a[3].to(act), groups);
        (plain.to(ScalarType.Float32) * upstream).sum().backward();

        var b = Leaves();
        Tensor mine;
        using (var scope = NewDisposeScope())   // as in MoE.forward: the forward's own tensors are disposed before backward
            mine = RecomputedExperts.Apply(b[0], tokenOf, pos, b[1], b[2], b[3], counts, LoopGroupedGemms.Instance,
                ReferenceFusedKernels.Instance, ReferenceTrainKernels.Instance).MoveToOuterDisposeScope();
        (mine.to(ScalarType.Float32) * upstream).sum().backward();

        Assert.Equal(act, mine.dtype);
        Close(mine, plain, tol, "ys");
        string[] names = ["dx", "dgate", "dup", "ddown"];
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(a[i].dtype, b[i].grad!.dtype);
            Close(b[i].grad!, a[i].grad!, tol, names[i]);
        }
        Assert.Equal(0.0, b[1].grad![1].abs().max().item<float>());   // the empty expert's weights get zero gradient
    }

    [Fact]
    public void A_model_step_through_it_equals_the_plain_step()
    {
        var config = BuiltinModels.Micro() with { UseCorrectionBias = true, ScoringFunc = "sigmoid" };
        using var model = new DeepSeekForCausalLM(config);
        model.InitWeights(seed: 4);
        var gen = new Generator(9);
        var ids = randint(0, config.VocabSize, [2, 9], generator: gen);
        var labels = randint(0, config.VocabSize, [2, 9], generator: gen);
        var parameters = model.parameters().ToArray();

        (double Loss, Tensor[] Grads) Step()
        {
            foreach (var p in parameters) p.grad = null;
            var logits = model.Forward(ids).Logits;
            var loss = nn.functional.cross_entropy(logits.reshape(-1, config.VocabSize), labels.reshape(-1));
            loss.backward();
            return (loss.item<float>(), parameters.Select(p => p.grad is null ? zeros(1) : p.grad.clone()).ToArray());
        }

        (double Loss, Tensor[] Grads) plain, recomputed;
        using (TrainKernels.UseOnCpu(ReferenceTrainKernels.Instance))
            plain = Step();
        var gemms = new CountingGemms();
        using (TrainKernels.UseOnCpu(ReferenceTrainKernels.Instance))
        using (RecomputedExperts.UseOnCpu(gemms))
            recomputed = Step();
        Assert.Equal(plain.Loss, recomputed.Loss, 5);
        for (int i = 0; i < parameters.Length; i++) Close(recomputed.Grads[i], plain.Grads[i], 1e-5, $"gradient {i}");
        // the micro model's one MoE layer: three grouped GEMMs each way, and the weight gradients
        Assert.Equal(3, gemms.Forwards);
        Assert.Equal(3, gemms.Dgrads);
        Assert.Equal(3, gemms.Wgrads);
    }

    [Fact]
    public void The_self_check_passes_the_loop_and_names_a_broken_gemm()
    {
        Assert.Null(RecomputedExperts.SelfCheck(LoopGroupedGemms.Instance, CPU));
        Assert.StartsWith("forward (Float32)", RecomputedExperts.SelfCheck(new BrokenGemms(forward: true), CPU));
        Assert.StartsWith("wgrad (Float32)", RecomputedExperts.SelfCheck(new BrokenGemms(forward: false), CPU));
    }

    private sealed class CountingGemms : IGroupedGemms
    {
        public int Forwards, Dgrads, Wgrads;
        public Tensor Groups(Tensor counts) => LoopGroupedGemms.Instance.Groups(counts);
        public Tensor Forward(Tensor a, Tensor w, Tensor groups) { Forwards++; return LoopGroupedGemms.Instance.Forward(a, w, groups); }
        public Tensor Dgrad(Tensor dy, Tensor w, Tensor groups) { Dgrads++; return LoopGroupedGemms.Instance.Dgrad(dy, w, groups); }
        public Tensor Wgrad(Tensor dy, Tensor a, Tensor groups) { Wgrads++; return LoopGroupedGemms.Instance.Wgrad(dy, a, groups); }
    }

    // forward: every expert uses expert 0's weights; otherwise the weight gradient of the empty expert is left unwritten
    private sealed class BrokenGemms(bool forward) : IGroupedGemms
    {
        public Tensor Groups(Tensor counts) => LoopGroupedGemms.Instance.Groups(counts);
        public Tensor Forward(Tensor a, Tensor w, Tensor groups) =>
            LoopGroupedGemms.Instance.Forward(a, forward ? w[0].unsqueeze(0).expand_as(w) : w, groups);
        public Tensor Dgrad(Tensor dy, Tensor w, Tensor groups) => LoopGroupedGemms.Instance.Dgrad(dy, w, groups);
        public Tensor Wgrad(Tensor dy, Tensor a, Tensor groups)
        {
            var dw = LoopGroupedGemms.Instance.Wgrad(dy, a, groups);
            if (!forward) dw[1].fill_(7.0);
            return dw;
        }
    }
}
