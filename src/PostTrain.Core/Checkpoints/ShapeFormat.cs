// Formats shapes as "[a, b, c]" for error messages and reports.
namespace PostTrain.Core.Checkpoints;

internal static class ShapeFormat
{
    public static string Of(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
