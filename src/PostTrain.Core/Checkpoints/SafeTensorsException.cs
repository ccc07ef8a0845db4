// The error thrown for any bad safetensors file, index or checkpoint directory. It always names
// the file at fault and, where one is involved, the tensor.
namespace PostTrain.Core.Checkpoints;

public sealed class SafeTensorsException : Exception
{
    public SafeTensorsException(string file, string? tensor, string problem, Exception? inner = null)
        : base(Compose(file, tensor, problem), inner)
    {
        File = file;
        Tensor = tensor;
        Problem = problem;
    }

    /// <summary>Path of the file (or directory) at fault.</summary>
    public string File { get; }

    /// <summary>Name of the tensor at fault, if the problem concerns one.</summary>
    public string? Tensor { get; }

    /// <summary>The problem without the file/tensor prefix.</summary>
    public string Problem { get; }

    private static string Compose(string file, string? tensor, string problem) =>
        tensor is null ? $"{file}: {problem}" : $"{file}: tensor '{tensor}': {problem}";
}
