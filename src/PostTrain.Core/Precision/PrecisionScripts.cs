// The ATen ops TorchSharp 0.107 does not wrap (_scaled_mm, _grouped_mm), reached through one fixed
// TorchScript compiled once per process. A TorchScript compile error aborts the process (std::terminate),
// so the source is a constant and a CPU test compiles it; dtype names are unknown to TorchScript here,
// hence the integer codes (15 = bfloat16, 6 = float32).
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Precision;

internal static class PrecisionScripts
{
    internal const string Source = """
def scaled_mm_bf16(a, b, scale_a, scale_b):
    return torch._scaled_mm(a, b.t(), scale_a, scale_b, out_dtype=15)

def scaled_mm_f32(a, b, scale_a, scale_b):
    return torch._scaled_mm(a, b.t(), scale_a, scale_b, out_dtype=6)

def grouped_mm(a, b, offs):
    return torch._grouped_mm(a, b, offs)

""";

    private static readonly Lazy<jit.CompilationUnit> Unit = new(() => jit.compile(Source), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Compiles the script now (the first call of any op does it otherwise).</summary>
    internal static void EnsureCompiled() => _ = Unit.Value;

    /// <summary>torch._scaled_mm(a, b.t(), scaleA, scaleB) for a (M, K) and b (N, K) row-major float8; returns (M, N)
    /// in bfloat16 or float32.</summary>
    internal static Tensor ScaledMm(Tensor a, Tensor b, Tensor scaleA, Tensor scaleB, ScalarType outType)
    {
        string fn = outType switch
        {
            ScalarType.BFloat16 => "scaled_mm_bf16",
            ScalarType.Float32 => "scaled_mm_f32",
            _ => throw new ArgumentOutOfRangeException(nameof(outType), $"_scaled_mm output dtype must be BFloat16 or Float32, got {outType}."),
        };
        return (Tensor)Unit.Value.invoke(fn, a, b, scaleA, scaleB);
    }

    /// <summary>torch._grouped_mm(a (T, K), b (E, K, N), offs (E,) int32 cumulative row ends) -> (T, N).</summary>
    internal static Tensor GroupedMm(Tensor a, Tensor b, Tensor offs) => (Tensor)Unit.Value.invoke("grouped_mm", a, b, offs);
}
