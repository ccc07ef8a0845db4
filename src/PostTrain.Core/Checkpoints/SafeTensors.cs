// Hugging Face safetensors checkpoint IO for TorchSharp: load a file or a (sharded) checkpoint
// directory into tensors, read headers, and save single files or sharded directories with
// config.json, byte-compatible with the safetensors/transformers writers.
// Guarantees: every file is written to a temp name and renamed into place; a directory is built
// next to the target and swapped in (see AtomicFiles), so a crash or an error never leaves a partly
// written file or a mix of old and new shards where a good checkpoint was, and no temp garbage is
// left behind on errors. Simplification: a saved directory contains exactly what was written (the
// previous directory's other files are not carried over; pass them via ExtraFiles).
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Checkpoints;

public static class SafeTensors
{
    public const string ConfigFileName = "config.json";

    /// <summary>Loads every tensor of a file or checkpoint directory (CPU unless options say otherwise).</summary>
    public static Dictionary<string, Tensor> Load(string fileOrDir, SafeTensorsLoadOptions? o = null)
    {
        o ??= new SafeTensorsLoadOptions();
        using var checkpoint = SafeTensorsCheckpoint.Open(fileOrDir);
        var pairs = o.DequantizeFp8 ? Fp8ScalePairs.Find(checkpoint.Tensors) : [];
        var scales = pairs.Values.ToHashSet(StringComparer.Ordinal);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var info in checkpoint.Tensors.Values)
            {
                if (scales.Contains(info.Name) || (o.Filter is not null && !o.Filter(info.Name))) continue;
                using var scope = torch.NewDisposeScope();
                var tensor = pairs.TryGetValue(info.Name, out var scale)
                    ? ReadDequantized(checkpoint, info.Name, scale, o.DequantizedDtype)
                    : checkpoint.Read(info.Name);
                if (o.Device is not null) tensor = tensor.to(o.Device);
                result[info.Name] = tensor.MoveToOuterDisposeScope();
            }
            return result;
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
    }

    /// <summary>The tensors listed in one file's header (offsets are relative to the data buffer).</summary>
    public static IReadOnlyDictionary<string, TensorInfo> ReadHeader(string file) =>
        SafeTensorsHeader.Read(file).Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);

    /// <summary>One file's __metadata__ (empty if it has none).</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string file) => SafeTensorsHeader.Read(file).Metadata;

    /// <summary>Writes one safetensors file atomically (temp file + rename).</summary>
    public static void Save(string file, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        Save(file, tensors, metadata, afterTensorWritten: null);

    internal static void Save(string file, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata,
        Action<string>? afterTensorWritten) =>
        AtomicFiles.WriteFile(file, temp => SafeTensorsFileWriter.WriteNew(temp, tensors, metadata, afterTensorWritten));

    /// <summary>Writes a checkpoint directory with shards of at most <paramref name="maxShardBytes"/> (see SaveDirectory).</summary>
    public static void SaveSharded(string dir, IReadOnlyDictionary<string, Tensor> tensors, long maxShardBytes,
        IReadOnlyDictionary<string, string>? metadata = null) =>
        SaveDirectory(dir, tensors, configJson: null, new CheckpointSaveOptions { MaxShardBytes = maxShardBytes, Metadata = metadata });

    /// <summary>As above with a size such as "5GB", "500MB" or "2GiB".</summary>
    public static void SaveSharded(string dir, IReadOnlyDictionary<string, Tensor> tensors, string maxShardSize,
        IReadOnlyDictionary<string, string>? metadata = null) =>
        SaveSharded(dir, tensors, ByteSize.Parse(maxShardSize), metadata);

    /// <summary>
    /// Writes a complete checkpoint directory like transformers' save_pretrained: model.safetensors
    /// when everything fits in one shard, else model-0000i-of-0000n.safetensors plus
    /// model.safetensors.index.json; config.json when <paramref name="configJson"/> is given. The
    /// directory is built beside <paramref name="dir"/> and swapped in, replacing what was there.
    /// </summary>
    public static void SaveDirectory(string dir, IReadOnlyDictionary<string, Tensor> stateDict, string? configJson,
        CheckpointSaveOptions? options = null)
    {
        options ??= new CheckpointSaveOptions();
        string full = Path.GetFullPath(dir);
        if (configJson is not null) RequireJsonObject(Path.Combine(full, ConfigFileName), configJson);
        foreach (var name in options.ExtraFiles?.Keys ?? [])
            if (name != Path.GetFileName(name) || name is "" or "." or ".." || IsCheckpointFile(name))
                throw new ArgumentException($"extra file name '{name}' must be a plain file name that is not a checkpoint file", nameof(options));

        var sizes = stateDict.ToDictionary(kv => kv.Key, kv => SafeTensorsFileWriter.DataBytes(full, kv.Key, kv.Value), StringComparer.Ordinal);
        var shards = ShardPlanner.Split(sizes, options.MaxShardBytes);
        AtomicFiles.ReplaceDirectory(full, temp =>
        {
            if (shards.Count <= 1)
            {
                WriteShard(temp, SafeTensorsCheckpoint.SingleFileName, stateDict, shards.SingleOrDefault() ?? [], options);
            }
            else
            {
                var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
                for (int i = 0; i < shards.Count; i++)
                {
                    string fileName = ShardPlanner.ShardFileName(i, shards.Count);
                    WriteShard(temp, fileName, stateDict, shards[i], options);
                    foreach (var name in shards[i]) weightMap[name] = fileName;
                }
                WriteText(Path.Combine(temp, ShardIndex.FileName), ShardIndex.Write(sizes.Values.Sum(), weightMap));
            }
            if (configJson is not null) WriteText(Path.Combine(temp, ConfigFileName), configJson);
            foreach (var (name, content) in options.ExtraFiles ?? new Dictionary<string, string>())
                WriteText(Path.Combine(temp, name), content);
        });
    }

    private static void WriteShard(string dir, string fileName, IReadOnlyDictionary<string, Tensor> stateDict, List<string> names,
        CheckpointSaveOptions options)
    {
        var shard = names.ToDictionary(n => n, n => stateDict[n], StringComparer.Ordinal);
        SafeTensorsFileWriter.WriteNew(Path.Combine(dir, fileName), shard, options.Metadata, options.AfterTensorWritten);
    }

    private static Tensor ReadDequantized(SafeTensorsCheckpoint checkpoint, string name, string scaleName, ScalarType dtype)
    {
        var weight = checkpoint.Read(name);
        var scale = checkpoint.Read(scaleName);
        try
        {
            return Fp8BlockDequantizer.Dequantize(weight, scale, dtype);
        }
        catch (ArgumentException e)
        {
            throw new SafeTensorsException(checkpoint.Tensors[name].File, name, $"cannot dequantise with '{scaleName}': {e.Message}", e);
        }
    }

    internal static bool IsCheckpointFile(string name) =>
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
        using (var writer = new StreamWriter(stream, new System.Text.UTF8Encoding(false), leaveOpen: true))
            writer.Write(content);
        stream.Flush(flushToDisk: true);
    }
}
