// A recipe YAML file plus command-line overrides ("optimizer.lr=1e-4", "data.splits=[train,test]", "x=null"),
// parsed to one YAML tree that remembers where each node came from (file:line:col or the override), then
// bound to a config record. Override values are parsed as YAML, so lists, null and quoted strings work.
// Simplification: overrides address mapping keys only (no "list[0]=..." indexing).
using System.Runtime.CompilerServices;
using YamlDotNet.RepresentationModel;

namespace PostTrain.Training.Recipes;

public sealed class RecipeDocument
{
    private readonly ConditionalWeakTable<YamlNode, string> _overrideOrigins = new();

    public string Source { get; }
    public IReadOnlyList<string> Overrides { get; }
    internal YamlMappingNode Root { get; }

    private RecipeDocument(string source, YamlMappingNode root, IReadOnlyList<string> overrides)
    {
        Source = source;
        Root = root;
        Overrides = overrides;
    }

    public static RecipeDocument FromFile(string path, IReadOnlyList<string>? overrides = null)
    {
        if (!File.Exists(path)) throw new RecipeConfigException($"{path}: recipe file not found");
        return FromText(File.ReadAllText(path), path, overrides);
    }

    public static RecipeDocument FromText(string yaml, string source, IReadOnlyList<string>? overrides = null)
    {
        var root = ParseRoot(yaml, source) switch
        {
            null => new YamlMappingNode(),
            YamlMappingNode m => m,
            var other => throw new RecipeConfigException($"{source}:{other.Start.Line}:{other.Start.Column}: the recipe must be a mapping of keys to values"),
        };
        var doc = new RecipeDocument(source, root, overrides ?? []);
        foreach (var o in doc.Overrides) doc.ApplyOverride(o);
        return doc;
    }

    /// <summary>The top-level <c>recipe:</c> value (after overrides): which registered recipe runs this file.</summary>
    public string? RecipeName => Find(Root, "recipe") is YamlScalarNode s && !ConfigBinder.IsNull(s) ? s.Value : null;

    public T Bind<T>() where T : class => (T)Bind(typeof(T));

    public object Bind(Type configType) => new ConfigBinder(Where).Bind(configType, Root);

    /// <summary>"recipes/sft.yaml:12:5" for nodes from the file, "override 'optimizer.lr=abc'" for overrides.</summary>
    internal string Where(YamlNode node)
    {
        if (_overrideOrigins.TryGetValue(node, out var origin)) return $"override '{origin}'";
        return node.Start.Line > 0 ? $"{Source}:{node.Start.Line}:{node.Start.Column}" : Source;
    }

    /// <summary>Where a top-level key is set (for errors about its value found after binding).</summary>
    public string WhereKey(string key) => Find(Root, key) is { } node ? $"{Where(node)}: {key}" : $"{Source}: {key}";

    private static YamlNode? ParseRoot(string yaml, string source)
    {
        YamlStream stream;
        try { stream = YamlSyntax.Load(yaml); }
        catch (YamlSyntaxError e) { throw new RecipeConfigException($"{source}:{e.Line}:{e.Column}: invalid YAML: {e.Message}"); }
        if (stream.Documents.Count > 1) throw new RecipeConfigException($"{source}: expected one YAML document, found {stream.Documents.Count}");
        return stream.Documents.Count == 0 ? null : stream.Documents[0].RootNode;
    }

    private void ApplyOverride(string text)
    {
        int eq = text.IndexOf('=');
        var key = eq > 0 ? text[..eq].Trim() : "";
        var segments = key.Split('.');
        if (eq <= 0 || segments.Any(s => s.Length == 0))
            throw new RecipeConfigException($"override '{text}': expected key=value, e.g. optimizer.lr=1e-4");
        YamlNode value;
        try
        {
            value = ParseRoot(text[(eq + 1)..], $"override '{text}'") ?? new YamlScalarNode("");
        }
        catch (RecipeConfigException e)
        {
            throw new RecipeConfigException($"override '{text}': cannot parse the value: {e.Message}");
        }
        foreach (var n in value.AllNodes) _overrideOrigins.AddOrUpdate(n, text);

        var map = Root;
        foreach (var segment in segments[..^1])
        {
            if (Find(map, segment) is YamlMappingNode child) { map = child; continue; }
            var created = new YamlMappingNode();
            _overrideOrigins.AddOrUpdate(created, text);
            Set(map, segment, created, text);
            map = created;
        }
        Set(map, segments[^1], value, text);
    }

    private void Set(YamlMappingNode map, string key, YamlNode value, string origin)
    {
        var existing = map.Children.Keys.FirstOrDefault(k => k is YamlScalarNode s && s.Value == key);
        if (existing is not null)
        {
            map.Children[existing] = value;
            return;
        }
        var keyNode = new YamlScalarNode(key);
        _overrideOrigins.AddOrUpdate(keyNode, origin);
        map.Children.Add(keyNode, value);
    }

    private static YamlNode? Find(YamlMappingNode map, string key) =>
        map.Children.FirstOrDefault(kv => kv.Key is YamlScalarNode s && s.Value == key).Value;
}
