// An opened safetensors checkpoint: one file, or a directory holding model.safetensors or
// model.safetensors.index.json plus its shards. Opening reads every header, checks the weight_map
// against the shards and keeps one open handle per file, so later reads come from exactly the files
// that were validated even if the directory is swapped meanwhile. Tensors are read lazily.
// Consistency against a concurrent SafeTensors.SaveDirectory (which swaps whole directories): the
// index stays open while the shards are opened, then IndexIdentity checks it is still the file at
// its path; if the directory was swapped meanwhile, opening starts over (3 tries), so a reader gets
// all-old or all-new shards, never a mix.
using Microsoft.Win32.SafeHandles;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Checkpoints;

public sealed class SafeTensorsCheckpoint : IDisposable
{
    public const string SingleFileName = "model.safetensors";
    private const int OpenAttempts = 3;

    private readonly Dictionary<string, (SafeFileHandle Handle, SafeTensorsHeader Header)> _files;

    private SafeTensorsCheckpoint(string path, Dictionary<string, (SafeFileHandle, SafeTensorsHeader)> files, IReadOnlyDictionary<string, TensorInfo> tensors)
    {
        Path = path;
        _files = files;
        Tensors = tensors;
    }

    /// <summary>The file or directory that was opened (full path).</summary>
    public string Path { get; }

    /// <summary>Every tensor as stored, ordered by file then by position in the file.</summary>
    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }

    /// <summary>Full paths of the safetensors files involved.</summary>
    public IReadOnlyList<string> Files => _files.Keys.ToList();

    /// <summary>The __metadata__ of one of the files.</summary>
    public IReadOnlyDictionary<string, string> MetadataOf(string file) => _files[System.IO.Path.GetFullPath(file)].Header.Metadata;

    // Test seam: runs after the index was read and before the shards are opened (this thread only).
    [ThreadStatic]
    internal static Action<string>? AfterIndexReadForTest;

    public static SafeTensorsCheckpoint Open(string fileOrDir)
    {
        string path = System.IO.Path.GetFullPath(fileOrDir);
        if (File.Exists(path))
            return OpenFiles(path, [path], weightMap: null);
        if (!Directory.Exists(path))
            throw new SafeTensorsException(path, null, "no such file or directory");

        string single = System.IO.Path.Combine(path, SingleFileName);
        string index = System.IO.Path.Combine(path, ShardIndex.FileName);
        for (int attempt = 1; ; attempt++)
        {
            if (File.Exists(single))
                return OpenFiles(path, [single], weightMap: null);
            if (!File.Exists(index))
                throw new SafeTensorsException(path, null, $"directory has neither {SingleFileName} nor {ShardIndex.FileName}");

            var checkpoint = OpenSharded(path, index, lastAttempt: attempt == OpenAttempts);
            if (checkpoint is not null) return checkpoint;
        }
    }

    // Returns null when the index was replaced while the shards were being opened (caller retries);
    // then an error seen meanwhile (a shard gone, a tensor absent) belongs to the old state and is dropped.
    private static SafeTensorsCheckpoint? OpenSharded(string dir, string indexPath, bool lastAttempt)
    {
        using var indexHandle = File.OpenHandle(indexPath);
        var before = IndexIdentity.Of(indexHandle);
        var bytes = new byte[before.Length];
        for (int done = 0, read; done < bytes.Length; done += read)
            if ((read = RandomAccess.Read(indexHandle, bytes.AsSpan(done), done)) == 0)
                throw new SafeTensorsException(indexPath, null, "file shrank while being read");
        string json = System.Text.Encoding.UTF8.GetString(bytes).TrimStart('\uFEFF'); // tolerate a BOM

        SafeTensorsCheckpoint? checkpoint = null;
        try
        {
            var weightMap = ShardIndex.ReadWeightMap(indexPath, json);
            AfterIndexReadForTest?.Invoke(dir);
            var shardPaths = weightMap.Values.Distinct().Select(s => System.IO.Path.Combine(dir, s)).ToList();
            foreach (var shard in shardPaths.Where(s => !File.Exists(s)))
            {
                var pointing = weightMap.Where(kv => System.IO.Path.Combine(dir, kv.Value) == shard).Select(kv => kv.Key).ToList();
                throw new SafeTensorsException(indexPath, pointing[0],
                    $"weight_map points to missing file '{System.IO.Path.GetFileName(shard)}' ({pointing.Count} tensors point there)");
            }
            checkpoint = OpenFiles(dir, shardPaths, weightMap);
        }
        catch (Exception e) when ((e is SafeTensorsException or IOException) && !lastAttempt && IndexIdentity.Changed(before, indexHandle, indexPath))
        {
            return null;
        }
        if (!IndexIdentity.Changed(before, indexHandle, indexPath)) return checkpoint;
        checkpoint.Dispose();
        if (lastAttempt)
            throw new SafeTensorsException(indexPath, null, $"the checkpoint changed while it was being opened, {OpenAttempts} times in a row");
        return null;
    }

    private static SafeTensorsCheckpoint OpenFiles(string path, IReadOnlyList<string> files, IReadOnlyDictionary<string, string>? weightMap)
    {
        var opened = new Dictionary<string, (SafeFileHandle, SafeTensorsHeader)>(StringComparer.Ordinal);
        try
        {
            foreach (string file in files)
            {
                var handle = File.OpenHandle(file);
                opened[file] = (handle, default!);
                opened[file] = (handle, SafeTensorsHeader.Read(file, handle));
            }
            var tensors = weightMap is null ? CollectAll(opened) : CollectMapped(path, opened, weightMap);
            return new SafeTensorsCheckpoint(path, opened, tensors);
        }
        catch
        {
            foreach (var (handle, _) in opened.Values) handle.Dispose();
            throw;
        }
    }

    private static Dictionary<string, TensorInfo> CollectAll(Dictionary<string, (SafeFileHandle, SafeTensorsHeader Header)> files) =>
        files.Values.Single().Header.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);

    private static Dictionary<string, TensorInfo> CollectMapped(
        string dir, Dictionary<string, (SafeFileHandle, SafeTensorsHeader Header)> files, IReadOnlyDictionary<string, string> weightMap)
    {
        foreach (var (name, shard) in weightMap)
        {
            string file = System.IO.Path.Combine(dir, shard);
            if (!files[file].Header.ByName.ContainsKey(name))
                throw new SafeTensorsException(file, name, $"listed in {ShardIndex.FileName} for this shard but absent from the shard's header");
        }
        // Order by file, then by position: reads then walk each shard front to back.
        return files.Values
            .SelectMany(f => f.Header.Tensors)
            .Where(t => weightMap.TryGetValue(t.Name, out var shard) && System.IO.Path.Combine(dir, shard) == t.File)
            .ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>Reads a tensor as stored (dtype and shape of the file) into a new CPU tensor.</summary>
    public Tensor Read(string name)
    {
        var info = Info(name);
        var dtype = SafeTensorsDtype.FromName(info.Dtype);
        var tensor = torch.empty(info.Shape, dtype.ScalarType);
        try
        {
            var (handle, header) = _files[info.File];
            TensorBytes.ReadInto(handle, header.DataStart + info.Start, tensor, info.File, name);
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Copies a stored tensor into an existing tensor of the same shape (any dtype, any device; the
    /// value is converted). Reads straight into its memory when it is a contiguous CPU tensor of the
    /// stored dtype.
    /// </summary>
    public void ReadInto(string name, Tensor target)
    {
        var info = Info(name);
        if (!target.shape.SequenceEqual(info.Shape))
            throw new SafeTensorsException(info.File, name, $"stored shape {info.ShapeText} does not match the target's {ShapeFormat.Of(target.shape)}");
        var dtype = SafeTensorsDtype.FromName(info.Dtype);
        if (target.device_type == DeviceType.CPU && target.is_contiguous() && target.dtype == dtype.ScalarType)
        {
            var (handle, header) = _files[info.File];
            TensorBytes.ReadInto(handle, header.DataStart + info.Start, target, info.File, name);
            return;
        }
        using var stored = Read(name);
        using var noGrad = torch.no_grad();
        target.copy_(stored);
    }

    private TensorInfo Info(string name) =>
        Tensors.TryGetValue(name, out var info) ? info : throw new SafeTensorsException(Path, name, "no such tensor in the checkpoint");

    public void Dispose()
    {
        foreach (var (handle, _) in _files.Values) handle.Dispose();
    }
}
