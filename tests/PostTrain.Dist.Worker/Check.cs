// Comparisons of the worker's scenarios: relative closeness of numbers and tensors, throwing with the values.
using static TorchSharp.torch;

namespace PostTrain.Tests.DistWorker;

internal static class Check
{
    public static void Close(double actual, double expected, double rel, string what)
    {
        if (!(Math.Abs(actual - expected) <= rel * Math.Max(1e-12, Math.Abs(expected))))
            throw new InvalidOperationException($"{what}: {actual:R} vs {expected:R} (relative {Math.Abs(actual - expected) / Math.Abs(expected):E2} > {rel:E0})");
    }

    /// <summary>max |a - e| <= rel * max |e| over the tensor.</summary>
    public static double Close(Tensor actual, Tensor expected, double rel, string what)
    {
        if (!actual.shape.SequenceEqual(expected.shape)) throw new InvalidOperationException($"{what}: shape [{string.Join(",", actual.shape)}] vs [{string.Join(",", expected.shape)}]");
        double diff = (actual.to(ScalarType.Float64) - expected.to(ScalarType.Float64)).abs().max().item<double>();
        double scale = expected.to(ScalarType.Float64).abs().max().item<double>();
        if (!(diff <= rel * Math.Max(scale, 1e-12)))
            throw new InvalidOperationException($"{what}: max difference {diff:E3} against max magnitude {scale:E3} (relative {diff / scale:E2} > {rel:E0})");
        return diff / Math.Max(scale, 1e-30);
    }

    /// <summary>||a - e|| <= rel * ||e|| (Frobenius): for weights after AdamW steps, whose m / sqrt(v) magnifies fp32
    /// summation-order noise on near-zero gradients into single elements (as DataParallelSftTests compares them).</summary>
    public static double CloseByNorm(Tensor actual, Tensor expected, double rel, string what)
    {
        if (!actual.shape.SequenceEqual(expected.shape)) throw new InvalidOperationException($"{what}: shape [{string.Join(",", actual.shape)}] vs [{string.Join(",", expected.shape)}]");
        double diff = (actual.to(ScalarType.Float64) - expected.to(ScalarType.Float64)).norm().item<double>();
        double scale = Math.Max(expected.to(ScalarType.Float64).norm().item<double>(), 1e-12);
        if (!(diff <= rel * scale))
            throw new InvalidOperationException($"{what}: ||difference|| {diff:E3} against ||expected|| {scale:E3} (relative {diff / scale:E2} > {rel:E0})");
        return diff / scale;
    }

    public static void Equal<T>(IReadOnlyList<T> actual, IReadOnlyList<T> expected, string what)
    {
        if (!actual.SequenceEqual(expected))
            throw new InvalidOperationException($"{what}: [{string.Join(", ", actual)}] vs [{string.Join(", ", expected)}]");
    }
}
