// Binds a YAML tree onto a config record by reflection: sections are classes with a parameterless constructor,
// leaves are int/long/double/float/bool/string/enums, lists and string-keyed dictionaries, or YamlNode for a value kept
// as raw YAML (e.g. a pipeline stage's overrides, handed on to another recipe's config). Keys absent from
// the YAML keep the record's initializer defaults; `required` members must be present. Every problem is
// collected with its location and dotted key, then thrown together. Simplification: no YAML anchors/tags.
using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace PostTrain.Training.Recipes;

internal sealed class ConfigBinder(Func<YamlNode, string> where)
{
    private static readonly object Failed = new();
    private readonly List<string> _errors = [];

    public object Bind(Type type, YamlMappingNode root)
    {
        var result = BindSection(type, root, "");
        if (_errors.Count > 0) throw new RecipeConfigException(_errors);
        return result;
    }

    internal static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any } s
        && (string.IsNullOrEmpty(s.Value) || s.Value is "~" or "null" or "Null" or "NULL");

    private void Error(YamlNode node, string path, string message) => _errors.Add($"{where(node)}: {path}: {message}");

    private static string Join(string prefix, string key) => prefix.Length == 0 ? key : prefix + "." + key;

    private object BindSection(Type type, YamlMappingNode map, string prefix)
    {
        var props = ConfigProperty.For(type);
        var obj = Activator.CreateInstance(type)!;
        var seen = new HashSet<string>();
        foreach (var (keyNode, valueNode) in map.Children)
        {
            if (keyNode is not YamlScalarNode { Value: { } key })
            {
                Error(keyNode, prefix.Length == 0 ? "(root)" : prefix, "keys must be plain names");
                continue;
            }
            var path = Join(prefix, key);
            var prop = props.FirstOrDefault(p => p.Key == key);
            if (prop is null)
            {
                Error(keyNode, path, "unknown key" + Suggest(type, key, prefix));
                continue;
            }
            seen.Add(key);
            var value = BindValue(prop.Type, prop.AcceptsNull, valueNode, path);
            if (!ReferenceEquals(value, Failed)) prop.Property.SetValue(obj, value);
        }
        foreach (var p in props.Where(p => p.Required && !seen.Contains(p.Key)))
            Error(map, Join(prefix, p.Key), "missing required value");
        return obj;
    }

    /// <summary>"; did you mean 'optimizer.lr'?" from the sibling keys, else from any key path ending in the same name.</summary>
    private static string Suggest(Type type, string key, string prefix)
    {
        var siblings = ConfigProperty.For(type).Select(p => p.Key).ToList();
        var close = KeyNames.Closest(key, siblings);
        if (close is not null) return $"; did you mean '{Join(prefix, close)}'?";
        var elsewhere = AllPaths(type, prefix).FirstOrDefault(p => p.EndsWith("." + key, StringComparison.Ordinal));
        if (elsewhere is not null) return $"; did you mean '{elsewhere}'?";
        return $" (valid keys{(prefix.Length == 0 ? "" : $" under '{prefix}'")}: {string.Join(", ", siblings)})";
    }

    private static IEnumerable<string> AllPaths(Type type, string prefix)
    {
        foreach (var p in ConfigProperty.For(type))
        {
            var path = Join(prefix, p.Key);
            yield return path;
            var t = Nullable.GetUnderlyingType(p.Type) ?? p.Type;
            if (ConfigProperty.IsSection(t))
                foreach (var sub in AllPaths(t, path)) yield return sub;
        }
    }

    private object? BindValue(Type type, bool acceptsNull, YamlNode node, string path)
    {
        if (type == typeof(YamlNode)) return node;   // raw YAML, null included (e.g. an override that sets a key to null)
        if (IsNull(node))
        {
            if (acceptsNull) return null;
            Error(node, path, $"expected {Describe(type)}, got null");
            return Failed;
        }
        var t = Nullable.GetUnderlyingType(type) ?? type;
        if (ConfigProperty.IsList(t, out var element))
        {
            if (node is not YamlSequenceNode seq) return Mismatch(node, t, path);
            var list = (System.Collections.IList)Activator.CreateInstance(typeof(List<>).MakeGenericType(element))!;
            bool elementNullable = Nullable.GetUnderlyingType(element) is not null;
            for (int i = 0; i < seq.Children.Count; i++)
            {
                var item = BindValue(element, elementNullable, seq.Children[i], $"{path}[{i}]");
                if (ReferenceEquals(item, Failed)) return Failed;
                list.Add(item);
            }
            if (!t.IsArray) return list;
            var array = Array.CreateInstance(element, list.Count);
            list.CopyTo(array, 0);
            return array;
        }
        if (ConfigProperty.IsDictionary(t, out var valueType))
        {
            if (node is not YamlMappingNode map) return Mismatch(node, t, path);
            var dict = (System.Collections.IDictionary)Activator.CreateInstance(typeof(Dictionary<,>).MakeGenericType(typeof(string), valueType))!;
            foreach (var (k, v) in map.Children)
            {
                var key = (k as YamlScalarNode)?.Value ?? "";
                var item = BindValue(valueType, Nullable.GetUnderlyingType(valueType) is not null, v, Join(path, key));
                if (ReferenceEquals(item, Failed)) return Failed;
                dict[key] = item;
            }
            return dict;
        }
        if (ConfigProperty.IsSection(t))
            return node is YamlMappingNode section ? BindSection(t, section, path) : Mismatch(node, t, path);
        if (node is not YamlScalarNode scalar) return Mismatch(node, t, path);
        return ParseScalar(t, scalar, path);
    }

    private object Mismatch(YamlNode node, Type t, string path)
    {
        string got = node switch
        {
            YamlSequenceNode => "a list",
            YamlMappingNode => "a section",
            YamlScalarNode s => $"'{s.Value}'",
            _ => node.NodeType.ToString(),
        };
        Error(node, path, $"expected {Describe(t)}, got {got}");
        return Failed;
    }

    private object ParseScalar(Type t, YamlScalarNode node, string path)
    {
        var text = node.Value ?? "";
        var inv = CultureInfo.InvariantCulture;
        object? value = null;
        if (t == typeof(string)) value = text;
        else if (t == typeof(bool)) value = text.ToLowerInvariant() switch { "true" => true, "false" => false, _ => null };
        else if (t == typeof(int)) value = int.TryParse(text, NumberStyles.AllowLeadingSign, inv, out var i) ? i : null;
        else if (t == typeof(long)) value = long.TryParse(text, NumberStyles.AllowLeadingSign, inv, out var l) ? l : null;
        else if (t == typeof(double)) value = ParseDouble(text);
        else if (t == typeof(float)) value = ParseDouble(text) is double d ? (float)d : null;
        else if (t.IsEnum) value = ParseEnum(t, text);
        else
        {
            Error(node, path, $"config type {t.Name} is not supported");
            return Failed;
        }
        if (value is not null) return value;
        var suggestion = t.IsEnum && KeyNames.Closest(text, EnumKeys(t)) is { } close ? $"; did you mean '{close}'?" : "";
        Error(node, path, $"expected {Describe(t)}, got '{text}'{suggestion}");
        return Failed;
    }

    internal static double? ParseDouble(string text) => text switch
    {
        ".inf" or ".Inf" or "+.inf" => double.PositiveInfinity,
        "-.inf" or "-.Inf" => double.NegativeInfinity,
        ".nan" or ".NaN" => double.NaN,
        _ => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null,
    };

    internal static IEnumerable<string> EnumKeys(Type t) => t.GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static).Select(KeyNames.Of);

    private static object? ParseEnum(Type t, string text)
    {
        foreach (var f in t.GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static))
        {
            if (string.Equals(KeyNames.Of(f), text, StringComparison.OrdinalIgnoreCase)
                || string.Equals(f.Name, text, StringComparison.OrdinalIgnoreCase))
                return f.GetValue(null);
        }
        return null;
    }

    internal static string Describe(Type type)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        if (t == typeof(int) || t == typeof(long)) return "an integer";
        if (t == typeof(double) || t == typeof(float)) return "a number";
        if (t == typeof(bool)) return "true or false";
        if (t == typeof(string)) return "a string";
        if (t.IsEnum) return "one of " + string.Join(", ", EnumKeys(t));
        if (ConfigProperty.IsList(t, out var e)) return $"a list of {Describe(e)}";
        if (ConfigProperty.IsDictionary(t, out _)) return "a mapping";
        return "a section";
    }
}
