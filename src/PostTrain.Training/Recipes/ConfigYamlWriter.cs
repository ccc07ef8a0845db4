// Writes a bound config record back to YAML with the same keys the binder reads (the "resolved config":
// file values, overrides and defaults together), so it can be printed at start and re-run as is.
using System.Collections;
using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace PostTrain.Training.Recipes;

public static class ConfigYamlWriter
{
    public static string Write(object config, string? headerComment = null)
    {
        var sw = new StringWriter { NewLine = "\n" };
        if (headerComment is not null)
            foreach (var line in headerComment.Split('\n')) sw.Write($"# {line}".TrimEnd() + "\n");
        var e = new Emitter(sw);
        e.Emit(new StreamStart());
        e.Emit(new DocumentStart());
        WriteSection(e, config);
        e.Emit(new DocumentEnd(true));
        e.Emit(new StreamEnd());
        return sw.ToString();
    }

    private static void WriteSection(IEmitter e, object section)
    {
        e.Emit(new MappingStart());
        foreach (var p in ConfigProperty.For(section.GetType()))
        {
            e.Emit(new Scalar(p.Key));
            WriteValue(e, p.Property.GetValue(section));
        }
        e.Emit(new MappingEnd());
    }

    private static void WriteValue(IEmitter e, object? value)
    {
        switch (value)
        {
            case null: e.Emit(new Scalar("null")); break;
            case YamlNode node: WriteNode(e, node, flow: false); break;
            case string s: WriteString(e, s); break;
            case bool b: e.Emit(new Scalar(b ? "true" : "false")); break;
            case double d: e.Emit(new Scalar(FormatDouble(d))); break;
            case float f: e.Emit(new Scalar(float.IsFinite(f) ? f.ToString("R", CultureInfo.InvariantCulture) : FormatDouble(f))); break;
            case Enum en: e.Emit(new Scalar(KeyNames.Of(en.GetType().GetField(en.ToString())!))); break;
            case IFormattable n when value.GetType().IsPrimitive: e.Emit(new Scalar(n.ToString(null, CultureInfo.InvariantCulture))); break;
            case IDictionary dict:
                e.Emit(new MappingStart());
                foreach (DictionaryEntry kv in dict)
                {
                    WriteString(e, (string)kv.Key);
                    WriteValue(e, kv.Value);
                }
                e.Emit(new MappingEnd());
                break;
            case IEnumerable list:
                var items = list.Cast<object?>().ToList();
                bool flat = items.All(i => i is null || i is string || i.GetType().IsPrimitive || i is Enum);
                e.Emit(new SequenceStart(null, null, true, flat ? SequenceStyle.Flow : SequenceStyle.Block));
                foreach (var item in items) WriteValue(e, item);
                e.Emit(new SequenceEnd());
                break;
            default: WriteSection(e, value); break;
        }
    }

    /// <summary>A raw YAML value as one line of flow YAML (scalar styles kept), e.g. for a key=value override.</summary>
    public static string ToFlowText(YamlNode node)
    {
        var sw = new StringWriter { NewLine = "\n" };
        var e = new Emitter(sw, new EmitterSettings().WithMaxSimpleKeyLength(1024).WithBestWidth(int.MaxValue));
        e.Emit(new StreamStart());
        e.Emit(new DocumentStart());
        WriteNode(e, node, flow: true);
        e.Emit(new DocumentEnd(true));
        e.Emit(new StreamEnd());
        var text = sw.ToString().TrimEnd('\n');
        return text.EndsWith("\n...", StringComparison.Ordinal) ? text[..^4] : text;
    }

    private static void WriteNode(IEmitter e, YamlNode node, bool flow)
    {
        switch (node)
        {
            case YamlScalarNode s:
                e.Emit(new Scalar(null, null, s.Value ?? "", s.Style == ScalarStyle.Plain ? ScalarStyle.Any : s.Style, true, true));
                break;
            case YamlSequenceNode seq:
                e.Emit(new SequenceStart(null, null, true, flow || seq.Style == SequenceStyle.Flow ? SequenceStyle.Flow : SequenceStyle.Block));
                foreach (var c in seq.Children) WriteNode(e, c, flow);
                e.Emit(new SequenceEnd());
                break;
            case YamlMappingNode map:
                e.Emit(new MappingStart(null, null, true, flow || map.Style == MappingStyle.Flow ? MappingStyle.Flow : MappingStyle.Block));
                foreach (var (k, v) in map.Children)
                {
                    WriteNode(e, k, flow);
                    WriteNode(e, v, flow);
                }
                e.Emit(new MappingEnd());
                break;
            default: throw new ArgumentException($"unsupported YAML node {node.NodeType}");
        }
    }

    /// <summary>Strings that YAML would read back as null are quoted; the binder reads any other scalar as text.</summary>
    private static void WriteString(IEmitter e, string s)
    {
        bool readsAsNull = s.Length == 0 || s is "~" or "null" or "Null" or "NULL";
        e.Emit(new Scalar(null, null, s, readsAsNull ? ScalarStyle.DoubleQuoted : ScalarStyle.Any, true, true));
    }

    internal static string FormatDouble(double d) =>
        double.IsNaN(d) ? ".nan"
        : double.IsPositiveInfinity(d) ? ".inf"
        : double.IsNegativeInfinity(d) ? "-.inf"
        : d.ToString("R", CultureInfo.InvariantCulture);
}
