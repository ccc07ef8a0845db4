// Writes a checkpoint directory the way transformers' save_pretrained lays it out (one
// model.safetensors, or shards + model.safetensors.index.json; config.json; extra text files),
// built in a temp sibling and swapped in by AtomicFiles.ReplaceDirectory. The swap replaces the
// whole directory, so an existing target must be empty or already hold a safetensors checkpoint:
// a mistyped path (say, a home directory) is refused instead of wiped.
// Streaming (produce given): the state dict holds only names, dtypes and shapes (meta tensors will do); each tensor's
// values are made by produce(name) when its turn comes, written and freed, so the whole model is never in memory.
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Checkpoints;

internal static class CheckpointDirectoryWriter
{
    public const string ConfigFileName = "config.json";

    public static void Write(string dir, IReadOnlyDictionary<string, Tensor> stateDict, string? configJson, CheckpointSaveOptions options,
        Func<string, Tensor>? produce = null)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir));
        if (configJson is not null) RequireJsonObject(Path.Combine(full, ConfigFileName), configJson);
        foreach (var name in options.ExtraFiles?.Keys ?? [])
            if (name != Path.GetFileName(name) || name is "" or "." or ".." || IsCheckpointFile(name))
                throw new ArgumentException($"extra file name '{name}' must be a plain file name that is not a checkpoint file", nameof(options));
        RequireReplaceable(full);

        var layout = ShardLayout.Plan(stateDict, options.MaxShardBytes, full);
        AtomicFiles.ReplaceDirectory(full, temp =>
        {
            foreach (var shard in layout.Files)
                WriteShard(temp, shard, stateDict, options, produce);
            if (layout.Sharded) WriteText(Path.Combine(temp, ShardIndex.FileName), layout.IndexJson());
            if (configJson is not null) WriteText(Path.Combine(temp, ConfigFileName), configJson);
            foreach (var (name, content) in options.ExtraFiles ?? new Dictionary<string, string>())
                WriteText(Path.Combine(temp, name), content);
        });
    }

    private static void WriteShard(string dir, ShardFile file, IReadOnlyDictionary<string, Tensor> stateDict, CheckpointSaveOptions options,
        Func<string, Tensor>? produce)
    {
        var shard = file.Tensors.ToDictionary(n => n, n => stateDict[n], StringComparer.Ordinal);
        SafeTensorsFileWriter.WriteNew(Path.Combine(dir, file.FileName), shard, options.Metadata, options.AfterTensorWritten, produce);
    }

    private static void RequireReplaceable(string dir)
    {
        if (!Directory.Exists(dir) || !Directory.EnumerateFileSystemEntries(dir).Any()) return;
        if (File.Exists(Path.Combine(dir, SafeTensorsCheckpoint.SingleFileName)) || File.Exists(Path.Combine(dir, ShardIndex.FileName))) return;
        throw new IOException($"{dir}: exists and is neither empty nor a safetensors checkpoint directory; refusing to replace it");
    }

    private static bool IsCheckpointFile(string name) =>
        name.EndsWith(".safetensors", StringComparison.Ordinal) || name == ShardIndex.FileName || name == ConfigFileName;

    private static void RequireJsonObject(string file, string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ArgumentException($"{file}: config must be a JSON object, got a {doc.RootElement.ValueKind}");
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"{file}: config is not valid JSON ({e.Message})", e);
        }
    }

    private static void WriteText(string path, string content)
    {
        using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
        using (var writer = new StreamWriter(stream, new UTF8Encoding(false), leaveOpen: true))
            writer.Write(content);
        stream.Flush(flushToDisk: true);
    }
}
