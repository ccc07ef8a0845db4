// Renders "{column}" placeholders with a dataset row's columns ("{{" and "}}" are literal braces). Numbers are
// formatted invariantly, lists as "[a, b]". A missing column is an error naming the task, file and row.
using System.Globalization;
using System.Text;
using PostTrain.Data;

namespace PostTrain.Eval.Tasks;

public static class PromptTemplate
{
    public static string Render(string template, DataRow row, string taskName)
    {
        var sb = new StringBuilder(template.Length + 64);
        for (int i = 0; i < template.Length; i++)
        {
            char ch = template[i];
            if (ch == '{' && i + 1 < template.Length && template[i + 1] == '{') { sb.Append('{'); i++; continue; }
            if (ch == '}' && i + 1 < template.Length && template[i + 1] == '}') { sb.Append('}'); i++; continue; }
            if (ch == '}') throw new EvalConfigException($"task '{taskName}': prompt template has an unmatched '}}' at offset {i} (write '}}}}' for a literal brace)");
            if (ch != '{') { sb.Append(ch); continue; }
            int end = template.IndexOf('}', i + 1);
            if (end < 0) throw new EvalConfigException($"task '{taskName}': prompt template has an unclosed '{{' at offset {i}");
            var column = template[(i + 1)..end];
            if (!row.Columns.TryGetValue(column, out var value))
                throw new EvalConfigException($"task '{taskName}': {row.File} {row.Location}: prompt template needs column '{column}' (columns: {string.Join(", ", row.Columns.Keys)})");
            sb.Append(Format(value));
            i = end;
        }
        return sb.ToString();
    }

    public static string Format(object? value) => value switch
    {
        null => "",
        string s => s,
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        System.Collections.IEnumerable e => "[" + string.Join(", ", e.Cast<object?>().Select(Format)) + "]",
        _ => value.ToString() ?? "",
    };
}
