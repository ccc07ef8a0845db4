// The static-shape fast step (fused AdamW, chunked head loss, padded attention, device-side loss normalisation, run
// eagerly on the CPU exactly as it is captured on CUDA) against the plain eager training step (full logits,
// Losses.CrossEntropySum, plain AdamW): fp32 losses over 20 steps and every weight afterwards, on the micro MoE model
// with packed segments, ignored labels, a changing learning rate and grad-norm clipping.
using PostTrain.Core.FastPath;
using PostTrain.Core.Model;
using PostTrain.Core.Precision;
using TorchSharp;
using static TorchSharp.torch;
using AdamW = PostTrain.Core.Precision.AdamW;

namespace PostTrain.Core.Tests.FastPath;

public sealed class FastTrainStepTests
{
    private static DeepSeekForCausalLM Model()
    {
        var cfg = BuiltinModels.Micro(50) with { NumNextnPredictLayers = 0 };
        var m = new DeepSeekForCausalLM(cfg);
        m.InitWeights(0.05, 11);
        m.train();
        return m;
    }

    [Fact]
    public void FastStepEqualsPlainEagerStepOver20Steps()
    {
        const int B = 2, T = 12, steps = 20;
        var plainModel = Model();
        var fastModel = Model();
        var plainOpt = new AdamW(plainModel.named_parameters().Select(p => (p.name, p.parameter)), 1e-2, weightDecay: 0.01);
        var fastOpt = new AdamW(fastModel.named_parameters().Select(p => (p.name, p.parameter)), 1e-2, weightDecay: 0.01, fused: true);
        using var fast = FastTrainStep.Create(fastModel, fastOpt, B, T, packed: true, FastPathMode.Auto,
            new FastTrainStepOptions { MaxGradNorm = 0.5 });
        Assert.StartsWith("eager", fast.Description);

        var gen = new Generator(17);
        var seg = tensor(new long[] { 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2 }).view(B, T);
        var pos = tensor(new long[] { 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1 }).view(B, T);
        for (int s = 0; s < steps; s++)
        {
            var ids = randint(0, 50, [B, T], generator: gen);
            var labels = randint(0, 50, [B, T], generator: gen);
            labels[0, 4] = tensor(Losses.Ignore);
            labels[1, 11] = tensor(Losses.Ignore);
            double lr = 1e-2 * (1 - s / 40.0);

            // plain eager step
            plainOpt.LearningRate = lr;
            var output = plainModel.Forward(ids, pos, new AttentionMask(null, seg));
            var (sum, count) = Losses.CrossEntropySum(output.Logits, labels);
            var loss = sum / count;
            loss.backward();
            var grads = plainModel.parameters().Select(p => p.grad!).ToList();
            double norm = Math.Sqrt(grads.Sum(g => g.pow(2).sum().item<float>()));
            double scale = Math.Min(1.0, 0.5 / (norm + 1e-6));
            using (no_grad()) foreach (var g in grads) g.mul_(scale);
            plainOpt.Step();
            plainOpt.ZeroGrad();

            var r = fast.Step(ids, labels, pos, seg, lr);
            Assert.True(Math.Abs(loss.item<float>() - r.Loss.item<float>()) < 2e-5, $"step {s}: loss {loss.item<float>()} vs {r.Loss.item<float>()}");
            Assert.True(Math.Abs(norm - r.GradNorm!.item<float>()) < 1e-4 * Math.Max(1, norm), $"step {s}: grad norm {norm} vs {r.GradNorm.item<float>()}");
        }
        var a = plainModel.named_parameters().ToList();
        var b = fastModel.named_parameters().ToList();
        for (int i = 0; i < a.Count; i++)
        {
            double diff = (a[i].parameter - b[i].parameter).abs().max().item<float>();
            Assert.True(diff < 1e-4, $"{a[i].name} differs by {diff} after {steps} steps");
        }
        Assert.True((a[0].parameter - Model().parameters().First()).abs().max().item<float>() > 1e-3, "the weights did not train");
    }

    [Fact]
    public void Fp8ModelTakesTheFastStepOffCudaAndMatchesThePlainStep()
    {
        // Off CUDA the FP8 experts' host counts do not block the (eager) fast step; on CUDA only the native FP8
        // kernels would let it be captured (FastTrainStep.Fp8Blocker). FP8 computes in bf16: a bf16 tolerance.
        const int B = 2, T = 8, steps = 4;
        var plainModel = Model();
        var fastModel = Model();
        plainModel.SetPrecision(PostTrain.Core.Precision.Precision.Fp8);
        fastModel.SetPrecision(PostTrain.Core.Precision.Precision.Fp8);
        Assert.Null(FastTrainStep.Fp8Blocker(fastModel));
        var plainOpt = new AdamW(plainModel.named_parameters().Select(p => (p.name, p.parameter)), 1e-2);
        var fastOpt = new AdamW(fastModel.named_parameters().Select(p => (p.name, p.parameter)), 1e-2, fused: true);
        using var fast = FastTrainStep.Create(fastModel, fastOpt, B, T, packed: false, FastPathMode.Auto);
        var gen = new Generator(18);
        for (int s = 0; s < steps; s++)
        {
            var ids = randint(0, 50, [B, T], generator: gen);
            var labels = randint(0, 50, [B, T], generator: gen);
            var output = plainModel.Forward(ids, null, null);
            var (sum, count) = Losses.CrossEntropySum(output.Logits.to(ScalarType.Float32), labels);
            var loss = sum / count;
            loss.backward();
            plainOpt.Step();
            plainOpt.ZeroGrad();
            var r = fast.Step(ids, labels, null, null, 1e-2);
            double a = loss.item<float>(), b = r.Loss.item<float>();
            Assert.True(Math.Abs(a - b) <= 2e-2 * Math.Abs(a), $"step {s}: loss {a} vs {b}");
        }
    }

    [Fact]
    public void Fp32ExpertsOnCudaAreSaidUncapturableBeforeAnyCaptureIsTried()
    {
        // torch._grouped_mm's fp32 path reads its group offsets on the host (only bf16 has the device-offset kernel), so
        // a capture of an fp32 MoE step stops at that copy (seen on the H200: "Cannot copy between CPU and CUDA tensors
        // during CUDA graph capture"); the fast step then runs eagerly from the start, with the reason in the log.
        var moe = Model();
        Assert.Null(FastTrainStep.GraphBlocker(moe));                                   // on the CPU nothing is captured
        var why = FastTrainStep.GraphBlocker(moe, DeviceType.CUDA);
        Assert.NotNull(why);
        Assert.Contains("fp32", why);
        Assert.Contains("model.dtype: bfloat16", why);
        moe.SetPrecision(PostTrain.Core.Precision.Precision.Bf16);                      // bf16 compute: capturable
        Assert.Null(FastTrainStep.GraphBlocker(moe, DeviceType.CUDA));
        var dense = new DeepSeekForCausalLM(BuiltinModels.Micro(50) with { NumNextnPredictLayers = 0, NRoutedExperts = 0 });
        Assert.Null(FastTrainStep.GraphBlocker(dense, DeviceType.CUDA));                // no experts: no grouped GEMM
    }

    [Fact]
    public void NonFiniteLossSkipsTheUpdateOnTheDevice()
    {
        var m = Model();
        var opt = new AdamW(m.named_parameters().Select(p => (p.name, p.parameter)), 1e-2, fused: true);
        using var fast = FastTrainStep.Create(m, opt, 1, 6, false, FastPathMode.Auto, new FastTrainStepOptions { SkipNonFinite = true, MaxGradNorm = 1.0 });
        var ids = tensor(new long[] { 1, 2, 3, 4, 5, 6 }).view(1, 6);
        var labels = tensor(new long[] { 2, 3, 4, 5, 6, -100 }).view(1, 6);
        var r1 = fast.Step(ids, labels, null, null, 1e-2);
        Assert.True(float.IsFinite(r1.Loss.item<float>()));
        using (no_grad()) m.Model.Norm.Weight[0] = tensor(float.NaN);   // poisons the loss
        var before = m.named_parameters().Where(p => !p.name.StartsWith("model.norm")).Select(p => p.parameter.clone()).ToList();
        var r2 = fast.Step(ids, labels, null, null, 1e-2);
        Assert.True(float.IsNaN(r2.Loss.item<float>()));
        var after = m.named_parameters().Where(p => !p.name.StartsWith("model.norm")).Select(p => p.parameter).ToList();
        for (int i = 0; i < before.Count; i++)
            Assert.True(before[i].eq(after[i]).all().item<bool>(), $"parameter {i} changed in a skipped step");
        Assert.Equal(1L, opt.StateDict()["lm_head.weight.step"].item<long>());
    }

    [Fact]
    public void ModeParsesAndNeedsFusedOptimizer()
    {
        Assert.Equal(FastPathMode.Auto, FastPathModes.Parse(null));
        Assert.Equal(FastPathMode.Off, FastPathModes.Parse("OFF"));
        Assert.Throws<ArgumentException>(() => FastPathModes.Parse("fast"));
        var m = Model();
        var opt = new AdamW(m.named_parameters().Select(p => (p.name, p.parameter)));
        var e = Assert.Throws<InvalidOperationException>(() => FastTrainStep.Create(m, opt, 1, 4, false, FastPathMode.Auto));
        Assert.Contains("fused", e.Message);
    }
}
