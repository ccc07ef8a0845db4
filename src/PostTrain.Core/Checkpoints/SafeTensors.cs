// Hugging Face safetensors checkpoint IO for TorchSharp: load a file or a (sharded) checkpoint
// directory into tensors, read headers, and save single files or sharded directories with
// config.json, byte-compatible with the safetensors/transformers writers.
// Guarantees: every file is written to a temp name and renamed into place; a directory is built
// next to the target and swapped in (see AtomicFiles), so a crash or an error never leaves a partly
// written file or a mix of old and new shards where a good checkpoint was, and no temp garbage is
// left behind on errors. Readers (SafeTensorsCheckpoint) re-check the index after opening the
// shards, so they never combine shards of two saves.
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Checkpoints;

public static class SafeTensors
{
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
                    ? ReadDequantized(checkpoint, info.Name, scale, o.DequantizedDtype, o.Device)
                    : checkpoint.Read(info.Name);
                if (o.Transform is not null) tensor = o.Transform(info.Name, tensor);
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

    /// <summary>Writes one safetensors file atomically (temp file + rename). Metadata gets "format": "pt".</summary>
    public static void Save(string file, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        Save(file, tensors, metadata, afterTensorWritten: null);

    internal static void Save(string file, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata,
        Action<string>? afterTensorWritten) =>
        AtomicFiles.WriteFile(file, temp => SafeTensorsFileWriter.WriteNew(temp, tensors, metadata, afterTensorWritten));

    /// <summary>As Save, streaming: <paramref name="layout"/> gives names, dtypes and shapes (meta tensors will do), and
    /// <paramref name="produce"/>(name) makes each tensor's values when the writer reaches it (see SaveDirectoryStreaming).</summary>
    public static void SaveStreaming(string file, IReadOnlyDictionary<string, Tensor> layout, Func<string, Tensor> produce,
        IReadOnlyDictionary<string, string>? metadata = null) =>
        AtomicFiles.WriteFile(file, temp => SafeTensorsFileWriter.WriteNew(temp, layout, metadata, afterTensorWritten: null, produce));

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
    /// directory is built beside <paramref name="dir"/> and swapped in, replacing what was there
    /// (an existing directory must be empty or hold a safetensors checkpoint).
    /// </summary>
    public static void SaveDirectory(string dir, IReadOnlyDictionary<string, Tensor> stateDict, string? configJson,
        CheckpointSaveOptions? options = null) =>
        CheckpointDirectoryWriter.Write(dir, stateDict, configJson, options ?? new CheckpointSaveOptions());

    /// <summary>
    /// As SaveDirectory, streaming: <paramref name="layout"/> gives only names, dtypes and shapes (meta tensors will do),
    /// and <paramref name="produce"/>(name) makes each tensor's values (layout's dtype and shape) when its turn comes;
    /// each is freed once written, so host memory holds one tensor at a time, never the whole model.
    /// </summary>
    public static void SaveDirectoryStreaming(string dir, IReadOnlyDictionary<string, Tensor> layout, Func<string, Tensor> produce,
        string? configJson, CheckpointSaveOptions? options = null) =>
        CheckpointDirectoryWriter.Write(dir, layout, configJson, options ?? new CheckpointSaveOptions(), produce);

    private static Tensor ReadDequantized(SafeTensorsCheckpoint checkpoint, string name, string scaleName, ScalarType dtype, Device? device)
    {
        var weight = checkpoint.Read(name);
        var scale = checkpoint.Read(scaleName);
        if (device is not null)
        {
            weight = weight.to(device); // dequantise where the result goes (fast on a GPU)
            scale = scale.to(device);
        }
        return Fp8BlockDequantizer.Dequantize(weight, scale, dtype);
    }
}
