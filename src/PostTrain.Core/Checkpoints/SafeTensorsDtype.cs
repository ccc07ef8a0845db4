// The safetensors dtype names PostTrain reads and writes, mapped to TorchSharp scalar types.
// TorchSharp 0.107 has no float8 enum members; the libtorch codes 23 (float8_e5m2) and
// 24 (float8_e4m3fn) make real float8 tensors. Simplification: dtypes torch cannot hold in
// TorchSharp (F4, F6, F8_E8M0, unsigned > 8 bit, complex) are rejected as unknown.
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Checkpoints;

internal sealed record SafeTensorsDtype(string Name, ScalarType ScalarType, int Size, int SortRank)
{
    public const ScalarType Float8E5M2 = (ScalarType)23;
    public const ScalarType Float8E4M3 = (ScalarType)24;

    // SortRank follows the declaration order of the Rust safetensors Dtype enum; the writer sorts
    // tensors by descending rank (then name), as safetensors' own serializer does, so every tensor
    // starts at an offset that is a multiple of its element size.
    private static readonly SafeTensorsDtype[] All =
    [
        new("BOOL", ScalarType.Bool, 1, 0),
        new("U8", ScalarType.Byte, 1, 4),
        new("I8", ScalarType.Int8, 1, 5),
        new("F8_E5M2", Float8E5M2, 1, 6),
        new("F8_E4M3", Float8E4M3, 1, 7),
        new("I16", ScalarType.Int16, 2, 11),
        new("F16", ScalarType.Float16, 2, 13),
        new("BF16", ScalarType.BFloat16, 2, 14),
        new("I32", ScalarType.Int32, 4, 15),
        new("F32", ScalarType.Float32, 4, 17),
        new("F64", ScalarType.Float64, 8, 19),
        new("I64", ScalarType.Int64, 8, 20),
    ];

    private static readonly Dictionary<string, SafeTensorsDtype> ByName = All.ToDictionary(d => d.Name, StringComparer.Ordinal);
    private static readonly Dictionary<ScalarType, SafeTensorsDtype> ByScalarType = All.ToDictionary(d => d.ScalarType);

    public static string KnownNames => string.Join(", ", All.Select(d => d.Name));

    public static bool TryFromName(string name, out SafeTensorsDtype dtype) => ByName.TryGetValue(name, out dtype!);

    public static SafeTensorsDtype FromName(string name) =>
        ByName.TryGetValue(name, out var d) ? d : throw new ArgumentException($"unknown safetensors dtype '{name}' (known: {KnownNames})");

    public static bool TryFromScalarType(ScalarType type, out SafeTensorsDtype dtype) => ByScalarType.TryGetValue(type, out dtype!);
}
