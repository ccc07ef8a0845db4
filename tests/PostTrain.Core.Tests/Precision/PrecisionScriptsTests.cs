// The fixed TorchScript behind the CUDA path: it must compile (a TorchScript error would abort a GPU run)
// and its _scaled_mm wrapper must compute a b^T times the scales. CPU _scaled_mm only takes tensorwise
// scales, so that is what is checked here; the blockwise layouts are checked on the GPU by Fp8SelfCheck.
using PostTrain.Core.Precision;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Precision;

public sealed class PrecisionScriptsTests
{
    [Fact]
    public void ScriptCompiles() => PrecisionScripts.EnsureCompiled();

    [Theory]
    [InlineData(ScalarType.Float32, 1e-6)]
    [InlineData(ScalarType.BFloat16, 8e-3)]
    public void ScaledMmComputesABTransposedTimesTensorwiseScales(ScalarType outType, double tol)
    {
        var rng = new Rng(50);
        var a = rng.Randn(48, 256).clamp(-4, 4).to(Fp8.Float8E4M3);     // (M, K)
        var b = rng.Randn(32, 256).clamp(-4, 4).to(Fp8.Float8E4M3);     // (N, K), N != M
        var sa = tensor(0.5f);
        var sb = tensor(3f);

        var c = PrecisionScripts.ScaledMm(a, b, sa, sb, outType);

        var reference = a.to(ScalarType.Float64).mm(b.to(ScalarType.Float64).t()) * 1.5;
        Assert.Equal(outType, c.dtype);
        Assert.Equal([48L, 32L], c.shape);
        double err = (c.to(ScalarType.Float64) - reference).abs().max().item<double>() / reference.abs().max().item<double>();
        Assert.True(err < tol, $"relative error {err}");
    }
}
