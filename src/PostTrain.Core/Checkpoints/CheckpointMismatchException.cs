// Thrown by CheckpointLoader.LoadInto when checkpoint and model disagree; lists every missing,
// unexpected and mis-shaped tensor at once (names and shapes) instead of stopping at the first.
using System.Text;

namespace PostTrain.Core.Checkpoints;

public sealed class CheckpointMismatchException : Exception
{
    public CheckpointMismatchException(string checkpoint,
        IReadOnlyList<(string Name, long[] Shape)> missing,
        IReadOnlyList<(string Name, long[] Shape, string File)> unexpected,
        IReadOnlyList<(string Name, long[] ModelShape, long[] CheckpointShape, string File)> misShaped,
        string? hint)
        : base(Compose(checkpoint, missing, unexpected, misShaped, hint))
    {
        Checkpoint = checkpoint;
        Missing = missing.Select(m => m.Name).ToList();
        Unexpected = unexpected.Select(u => u.Name).ToList();
        MisShaped = misShaped.Select(m => m.Name).ToList();
    }

    public string Checkpoint { get; }
    public IReadOnlyList<string> Missing { get; }
    public IReadOnlyList<string> Unexpected { get; }
    public IReadOnlyList<string> MisShaped { get; }

    private static string Compose(string checkpoint,
        IReadOnlyList<(string Name, long[] Shape)> missing,
        IReadOnlyList<(string Name, long[] Shape, string File)> unexpected,
        IReadOnlyList<(string Name, long[] ModelShape, long[] CheckpointShape, string File)> misShaped,
        string? hint)
    {
        var sb = new StringBuilder($"{checkpoint}: checkpoint does not match the model: {missing.Count} missing, {unexpected.Count} unexpected, {misShaped.Count} mis-shaped");
        if (missing.Count > 0)
        {
            sb.Append("\n  missing (in the model, not in the checkpoint):");
            foreach (var (name, shape) in missing) sb.Append($"\n    {name} {ShapeFormat.Of(shape)}");
        }
        if (unexpected.Count > 0)
        {
            sb.Append("\n  unexpected (in the checkpoint, not in the model):");
            foreach (var (name, shape, file) in unexpected) sb.Append($"\n    {name} {ShapeFormat.Of(shape)} in {Path.GetFileName(file)}");
        }
        if (misShaped.Count > 0)
        {
            sb.Append("\n  mis-shaped:");
            foreach (var (name, model, stored, file) in misShaped)
                sb.Append($"\n    {name}: model {ShapeFormat.Of(model)}, checkpoint {ShapeFormat.Of(stored)} in {Path.GetFileName(file)}");
        }
        if (hint is not null) sb.Append("\n  hint: ").Append(hint);
        return sb.ToString();
    }
}
