// Shared tensor assertions for the Core tests.
using static TorchSharp.torch;

namespace PostTrain.Core.Tests;

internal static class TensorAssert
{
    /// <summary>got has want's shape and differs from it by at most <paramref name="tol"/> of want's largest magnitude
    /// (computed in fp64).</summary>
    public static void Close(Tensor got, Tensor want, double tol, string what)
    {
        Assert.Equal(want.shape, got.shape);
        double scale = want.to(ScalarType.Float64).abs().max().item<double>() + 1e-12;
        double worst = (got.to(ScalarType.Float64) - want.to(ScalarType.Float64)).abs().max().item<double>() / scale;
        Assert.True(worst <= tol, $"{what}: largest difference {worst:G3} of the values' scale (allowed {tol:G3})");
    }
}
