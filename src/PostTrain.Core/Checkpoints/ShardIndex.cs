// model.safetensors.index.json: reading (weight_map: tensor name -> shard file name) and writing it
// byte for byte as Hugging Face does (json.dumps(index, indent=2, sort_keys=True) + "\n" with
// {"metadata": {"total_size": <sum of tensor bytes>}, "weight_map": {...}}). Simplification: on
// read, metadata is not checked (writers disagree on what total_size counts).
using System.Text;
using System.Text.Json;

namespace PostTrain.Core.Checkpoints;

internal static class ShardIndex
{
    public const string FileName = "model.safetensors.index.json";

    /// <summary>Parses the weight map; shard names are checked to be plain names inside the directory.</summary>
    public static IReadOnlyDictionary<string, string> ReadWeightMap(string indexPath, string json)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new SafeTensorsException(indexPath, null, $"not valid JSON ({e.Message})", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("weight_map", out var map)
                || map.ValueKind != JsonValueKind.Object)
                throw new SafeTensorsException(indexPath, null, "no 'weight_map' object");

            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new SafeTensorsException(indexPath, entry.Name, $"weight_map value is a {entry.Value.ValueKind}, expected a shard file name");
                string shard = entry.Value.GetString()!;
                if (shard.Length == 0 || Path.IsPathRooted(shard) || shard.Split('/', '\\').Contains(".."))
                    throw new SafeTensorsException(indexPath, entry.Name, $"weight_map points to '{shard}', which is not a file name inside the checkpoint directory");
                if (!result.TryAdd(entry.Name, shard))
                    throw new SafeTensorsException(indexPath, entry.Name, "appears twice in weight_map");
            }
            return result;
        }
    }

    /// <summary>The index file's text exactly as transformers' save_pretrained writes it.</summary>
    public static string Write(long totalSize, IReadOnlyDictionary<string, string> weightMap)
    {
        var sb = new StringBuilder();
        sb.Append("{\n  \"metadata\": {\n    \"total_size\": ").Append(totalSize).Append("\n  },\n  \"weight_map\": {");
        var names = weightMap.Keys.OrderBy(k => k, CodePointComparer.Instance).ToList();
        for (int i = 0; i < names.Count; i++)
        {
            sb.Append(i == 0 ? "\n    " : ",\n    ");
            PythonJsonString(sb, names[i]);
            sb.Append(": ");
            PythonJsonString(sb, weightMap[names[i]]);
        }
        sb.Append(names.Count == 0 ? "}" : "\n  }").Append("\n}\n");
        return sb.ToString();
    }

    // Python's json.dumps with ensure_ascii=True: \" \\ \n \r \t \b \f, every other char outside
    // ' '..'~' as \uXXXX (lowercase hex, UTF-16 code units, so astral chars become surrogate pairs).
    private static void PythonJsonString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < ' ' || c > '~') sb.Append("\\u").Append(((int)c).ToString("x4"));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
