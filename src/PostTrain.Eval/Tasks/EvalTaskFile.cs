// Reads a task file (YAML, or JSON, which YAML 1.2 reads too). Keys:
//   name (default: file name), dataset (required; relative paths are relative to the task file), checker (required),
//   checker_options (map), prompt_template, system_prompt, category_column, answers (math|countdown|code|none;
//   default from the checker name), stop_strings (list).
// Unknown keys are errors naming the file and key.
using PostTrain.Training.Recipes;
using YamlDotNet.RepresentationModel;

namespace PostTrain.Eval.Tasks;

public static class EvalTaskFile
{
    private static readonly HashSet<string> Keys = ["name", "dataset", "checker", "checker_options", "prompt_template",
        "system_prompt", "category_column", "answers", "stop_strings"];

    public static EvalTask Load(string path)
    {
        if (!File.Exists(path)) throw new EvalConfigException($"task file '{path}' not found");
        return Parse(File.ReadAllText(path), path);
    }

    public static EvalTask Parse(string text, string path)
    {
        YamlStream stream;
        try { stream = YamlSyntax.Load(text); }
        catch (YamlSyntaxError e) { throw new EvalConfigException($"{path}:{e.Line}:{e.Column}: invalid YAML: {e.Message}"); }
        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new EvalConfigException($"{path}: expected one mapping of task keys");
        var map = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        foreach (var (k, v) in root.Children)
        {
            var key = ((YamlScalarNode)k).Value ?? "";
            if (!Keys.Contains(key)) throw new EvalConfigException($"{path}: line {k.Start.Line}: unknown key '{key}' (known: {string.Join(", ", Keys.Order())})");
            map[key] = v;
        }
        string? Str(string key) => map.TryGetValue(key, out var n) ? n is YamlScalarNode s ? s.Value
            : throw new EvalConfigException($"{path}: line {n.Start.Line}: '{key}' must be a text value") : null;
        string Required(string key) => Str(key) is { Length: > 0 } s ? s : throw new EvalConfigException($"{path}: missing required key '{key}'");

        string checker = Required("checker");
        string dataset = Required("dataset");
        if (!Path.IsPathRooted(dataset)) dataset = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, dataset));
        string answers = Str("answers") ?? DefaultAnswers(checker);
        if (!EvalTask.AnswerKinds.Contains(answers))
            throw new EvalConfigException($"{path}: answers must be one of {string.Join(", ", EvalTask.AnswerKinds)} (got '{answers}')");
        var options = map.TryGetValue("checker_options", out var o) ? o is YamlMappingNode om ? ToDictionary(om, path)
            : throw new EvalConfigException($"{path}: line {o.Start.Line}: checker_options must be a mapping") : EvalTask.NoOptions;
        IReadOnlyList<string>? stops = map.TryGetValue("stop_strings", out var st) ? st is YamlSequenceNode seq
            ? seq.Children.Select(c => (c as YamlScalarNode)?.Value ?? throw new EvalConfigException($"{path}: line {c.Start.Line}: stop_strings items must be text")).ToList()
            : throw new EvalConfigException($"{path}: line {st.Start.Line}: stop_strings must be a list") : null;
        return new EvalTask(Str("name") ?? Path.GetFileNameWithoutExtension(path), dataset, checker, options,
            Str("prompt_template") ?? "{prompt}", Str("system_prompt"), Str("category_column") ?? "category", answers, stops);
    }

    public static string DefaultAnswers(string checker) => checker switch
    {
        "math" => "math",
        "countdown" => "countdown",
        "code" => "code",
        _ => "none",
    };

    private static Dictionary<string, object?> ToDictionary(YamlMappingNode m, string path) =>
        m.Children.ToDictionary(kv => ((YamlScalarNode)kv.Key).Value ?? "", kv => Value(kv.Value, path), StringComparer.Ordinal);

    /// <summary>Scalars become bool / long / double / string (plain scalars only are typed; quoted stay strings).</summary>
    private static object? Value(YamlNode n, string path) => n switch
    {
        YamlScalarNode s when s.Style is YamlDotNet.Core.ScalarStyle.Plain => s.Value switch
        {
            null or "null" or "~" => null,
            "true" => true,
            "false" => false,
            var v when long.TryParse(v, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var l) => l,
            var v when double.TryParse(v, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var d) => d,
            var v => v,
        },
        YamlScalarNode s => s.Value,
        YamlSequenceNode q => q.Children.Select(c => Value(c, path)).ToList(),
        YamlMappingNode m => ToDictionary(m, path),
        _ => throw new EvalConfigException($"{path}: line {n.Start.Line}: unsupported YAML node"),
    };
}
