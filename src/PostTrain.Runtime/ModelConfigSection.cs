// The model section of every recipe and verb that runs a model, and PostTrain's one dtype vocabulary:
// float32 | bfloat16 | fp8 | auto (YAML keys, --dtype values and metric labels alike; auto = bfloat16 on CUDA, float32
// elsewhere, resolved once the device is known).
namespace PostTrain.Runtime;

/// <summary>The model a trainer starts from (Hugging Face-style checkpoint directory).</summary>
public sealed record ModelConfigSection
{
    /// <summary>A Hugging Face-style model directory, or a built-in model name (tiny-moe, micro-moe, bench-moe), which
    /// starts from random weights (seeded) with the byte tokenizer.</summary>
    public required string Path { get; init; }

    /// <summary>Tokenizer directory; null = the model directory (tokenizer.json), or the byte tokenizer when there is none.</summary>
    public string? Tokenizer { get; init; }
    public DTypeName Dtype { get; init; } = DTypeName.Bfloat16;

    /// <summary>The dtype the parameters are kept in on the device: float32 (fp32 masters, the default) or bfloat16 (half
    /// the memory: for a frozen LoRA base, inference, or full training with optimizer.offload: host, whose fp32 masters
    /// live on the host).</summary>
    public DTypeName ParamDtype { get; init; } = DTypeName.Float32;

    /// <summary>With dtype fp8: the smallest width (the lesser of a linear layer's in and out features; of the routed
    /// experts' hidden and intermediate sizes) that runs in FP8; narrower layers run in bfloat16, where FP8's
    /// quantisation costs more than its GEMM saves. 0 (default): every linear layer and expert set (DeepSeek-V3's recipe).</summary>
    public int Fp8MinDim { get; init; }

    /// <summary>"cuda", "cuda:1", "cpu" or "auto" (cuda when available).</summary>
    public string Device { get; init; } = "auto";
}

/// <summary>Compute precision: float32, bfloat16, or fp8 (DeepSeek-V3's FP8 recipe on the linear layers; bf16 elsewhere);
/// auto: bfloat16 on CUDA (the precision a GPU trains in, and the one whose MoE step the fast path captures), float32
/// elsewhere (the CPU, where bfloat16 arithmetic is slow and the shipped recipes' numbers were measured).
/// Master weights are always fp32.</summary>
public enum DTypeName { Float32, Bfloat16, Fp8, Auto }

public static class DTypeNames
{
    public const string List = "float32, bfloat16, fp8, auto";

    /// <summary>The YAML/CLI spelling of a dtype.</summary>
    public static string Name(DTypeName d) => d switch
    {
        DTypeName.Float32 => "float32",
        DTypeName.Bfloat16 => "bfloat16",
        DTypeName.Auto => "auto",
        _ => "fp8",
    };

    /// <summary>The dtype <paramref name="d"/> means on <paramref name="device"/>: auto is bfloat16 on CUDA, float32
    /// elsewhere; the others are themselves.</summary>
    public static DTypeName Resolve(DTypeName d, TorchSharp.DeviceType device) =>
        d != DTypeName.Auto ? d : device == TorchSharp.DeviceType.CUDA ? DTypeName.Bfloat16 : DTypeName.Float32;

    /// <summary>A dtype from its one spelling (float32 | bfloat16 | fp8); <paramref name="where"/> names the option.</summary>
    public static DTypeName Parse(string value, string where) =>
        Enum.GetValues<DTypeName>().FirstOrDefault(d => Name(d) == value.Trim(), (DTypeName)(-1)) is var d && Enum.IsDefined(d)
            ? d
            : throw new RecipeConfigException($"{where}: '{value}' is not a dtype ({List})");
}
