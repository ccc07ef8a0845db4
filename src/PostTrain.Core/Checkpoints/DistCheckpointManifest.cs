// manifest.json of a distributed checkpoint step directory: the commit record written last, by rank 0, after every
// rank wrote its file rank-RRRRR-of-WWWWW.safetensors. It lists every stored tensor by name as one or more pieces:
// the file that holds the piece, its dtype, the global shape and the slice (dim, offset, length; no dim = the whole
// tensor), and optionally the parameter an optimizer-state entry belongs to. "run" is the trainer's own record
// (step, ZeRO stage, trainer state). A step directory without this file is an uncommitted (killed) save.
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace PostTrain.Core.Checkpoints;

public sealed record DistCheckpointPiece(string File, string Dtype, long[] GlobalShape, int? Dim, long? Offset, long? Length, string? Param)
{
    [JsonIgnore] public TensorSlice Slice => Dim is int d ? new(GlobalShape, d, Offset ?? 0, Length ?? 0) : TensorSlice.Whole(GlobalShape);
}

public sealed partial record DistCheckpointManifest(string Format, int Version, int WorldSize,
    SortedDictionary<string, List<DistCheckpointPiece>> Tensors, JsonObject Run)
{
    public const string FileName = "manifest.json";
    public const string FormatName = "posttrain-distributed-checkpoint";
    public const int CurrentVersion = 1;

    public static string RankFileName(int rank, int worldSize) => $"rank-{rank:D5}-of-{worldSize:D5}.safetensors";

    /// <summary>A rank file, or the temp name an atomic write gives one (.rank-...safetensors.tmp-&lt;guid&gt;).</summary>
    public static bool IsRankFile(string fileName) => RankFileRegex().IsMatch(fileName);

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Reads and checks dir/manifest.json; errors name the file and the tensor at fault.</summary>
    public static DistCheckpointManifest Read(string dir)
    {
        string path = Path.Combine(dir, FileName);
        DistCheckpointManifest? m;
        try { m = JsonSerializer.Deserialize<DistCheckpointManifest>(File.ReadAllText(path), Json); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a valid manifest ({e.Message})", e); }
        if (m is null || m.Format != FormatName)
            throw new InvalidDataException($"{path}: format is '{m?.Format}', expected '{FormatName}'");
        if (m.Version > CurrentVersion)
            throw new InvalidDataException($"{path}: version {m.Version} is newer than this PostTrain reads ({CurrentVersion})");
        if (m.WorldSize < 1) throw new InvalidDataException($"{path}: world_size {m.WorldSize} must be at least 1");
        if (m.Tensors is null || m.Run is null) throw new InvalidDataException($"{path}: 'tensors' and 'run' are required");
        foreach (var (name, pieces) in m.Tensors) Check(path, name, pieces);
        return m;
    }

    private static void Check(string path, string name, List<DistCheckpointPiece> pieces)
    {
        if (pieces.Count == 0) throw new InvalidDataException($"{path}: tensor '{name}' has no pieces");
        foreach (var p in pieces)
        {
            if (!IsRankFile(p.File) || p.File.StartsWith('.'))
                throw new InvalidDataException($"{path}: tensor '{name}': '{p.File}' is not a rank file name");
            if (!p.GlobalShape.SequenceEqual(pieces[0].GlobalShape) || p.Dtype != pieces[0].Dtype || p.Dim != pieces[0].Dim)
                throw new InvalidDataException($"{path}: tensor '{name}': its pieces disagree on dtype, global shape or sliced dim");
            if (p.Dim is int d && (d < 0 || d >= p.GlobalShape.Length || p.Offset is not long o || p.Length is not long n || o < 0 || n < 0 || o + n > p.GlobalShape[d]))
                throw new InvalidDataException($"{path}: tensor '{name}': slice {p.Slice} is outside the tensor");
        }
    }

    [GeneratedRegex(@"^\.?rank-\d{5}-of-\d{5}\.safetensors(\.tmp-[0-9a-f]{32})?$")]
    private static partial Regex RankFileRegex();
}
