// Comparisons the fast-path tests share (rm, grpo): per-step losses to a relative tolerance, and two models' weights as
// the whole model's relative L2 difference (Adam turns fp32 rounding in near-zero gradients into differences of a
// fraction of lr in single entries, so one entry's difference is not the measure) with the largest single difference.
using PostTrain.Core.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Training.Tests.Infra;

internal static class FastPathCompare
{
    public static void AssertLossesClose(IReadOnlyList<double> expected, IReadOnlyList<double> actual, double relative = 1e-5, string what = "loss")
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= relative * Math.Max(Math.Abs(expected[i]), 1e-6),
                $"step {i + 1}: {what} {actual[i]:R}, plain step {expected[i]:R}");
    }

    /// <summary>(relative L2 over all tensors, largest |a - b|, its tensor's name) of two named weight sets.</summary>
    public static (double RelL2, double MaxAbs, string Name) WeightDiff(IReadOnlyDictionary<string, Tensor> a, IReadOnlyDictionary<string, Tensor> b)
    {
        using var scope = NewDisposeScope();
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        double diff2 = 0, norm2 = 0, maxAbs = 0;
        string worst = "";
        foreach (var (name, t) in a)
        {
            var d = (t.detach().cpu() - b[name].detach().cpu()).to(ScalarType.Float64);
            diff2 += d.pow(2).sum().item<double>();
            norm2 += t.detach().cpu().to(ScalarType.Float64).pow(2).sum().item<double>();
            double m = d.numel() == 0 ? 0 : d.abs().max().item<double>();
            if (m > maxAbs) (maxAbs, worst) = (m, name);
        }
        return (Math.Sqrt(diff2 / Math.Max(norm2, 1e-30)), maxAbs, worst);
    }

    /// <summary>The weights of two run directories' final/model.safetensors.</summary>
    public static (double RelL2, double MaxAbs, string Name) FinalWeightDiff(string dirA, string dirB) =>
        WeightDiff(SafeTensors.Load(Path.Combine(dirA, "final", "model.safetensors")), SafeTensors.Load(Path.Combine(dirB, "final", "model.safetensors")));

    public static void AssertWeightsClose((double RelL2, double MaxAbs, string Name) w, string what) =>
        Assert.True(w.RelL2 <= 1e-5 && w.MaxAbs <= 1e-4, $"{what}: relative L2 {w.RelL2:E2}, max {w.MaxAbs:E2} in {w.Name}");
}
