// Finds \boxed{...} / \fbox{...} contents with nested braces. The last box is the answer; boxes just before
// it (separated by a short gap, or a longer one holding "and", "or", "," or ";") join it, in order, as a
// bare list "a, b". Repeated identical boxes count once. An unclosed last box yields the text after its brace.
// A percent word or sign right after the box ("\boxed{28}$ percent") is kept as "%".
using System.Text.RegularExpressions;

namespace PostTrain.Rewards.Math;

internal static partial class BoxedExtractor
{
    private const int NearGap = 10;
    private const int SeparatedGap = 70;

    /// <summary>The boxed answer, or null; <paramref name="start"/> is where the first joined box begins.</summary>
    public static string? Extract(string text, out int start)
    {
        start = -1;
        var boxes = new List<(int Start, int End, string Content)>();
        var searchEnd = text.Length;
        while (searchEnd > 0)
        {
            var b = text.LastIndexOf(@"\boxed", searchEnd - 1, StringComparison.Ordinal);
            var f = text.LastIndexOf(@"\fbox", searchEnd - 1, StringComparison.Ordinal);
            var at = System.Math.Max(b, f);
            if (at < 0) break;
            var content = ReadArgument(text, at + (at == b ? 6 : 5), out var end);
            searchEnd = at;
            if (content is null) continue;
            if (boxes.Count > 0)
            {
                if (end > boxes[^1].Start) break; // an unbalanced box that swallows the later one
                var gap = text[end..boxes[^1].Start];
                var joins = gap.Length < NearGap || (gap.Length < SeparatedGap && Separator().IsMatch(gap));
                if (!joins) break;
                if (boxes[^1].Content == content) { boxes[^1] = (at, boxes[^1].End, content); continue; }
            }
            else
            {
                if (end > text.Length) { start = at; return content; } // unclosed last box
                if (PercentAfter().IsMatch(text.AsSpan(end))) content += "%";
            }
            boxes.Add((at, end, content));
        }
        if (boxes.Count == 0) return null;
        boxes.Reverse();
        start = boxes[0].Start;
        return string.Join(", ", boxes.Select(x => x.Content));
    }

    public static string? Extract(string text) => Extract(text, out _);

    /// <summary>The {...} argument at <paramref name="pos"/> (after spaces), or a bare token for "\boxed 5".
    /// end is one past the closing brace, or past the text when unclosed.</summary>
    private static string? ReadArgument(string text, int pos, out int end)
    {
        while (pos < text.Length && text[pos] == ' ') pos++;
        end = pos;
        if (pos >= text.Length) return null;
        if (text[pos] != '{')
        {
            var stop = pos;
            while (stop < text.Length && !char.IsWhiteSpace(text[stop]) && text[stop] != '$') stop++;
            end = stop;
            return stop > pos ? text[pos..stop] : null;
        }
        var depth = 0;
        for (var i = pos; i < text.Length; i++)
        {
            if (text[i] == '\\' && i + 1 < text.Length && text[i + 1] is '{' or '}') { i++; continue; }
            if (text[i] == '{') depth++;
            else if (text[i] == '}' && --depth == 0)
            {
                end = i + 1;
                return text[(pos + 1)..i].Trim();
            }
        }
        end = text.Length + 1;
        return text[(pos + 1)..].Trim();
    }

    [GeneratedRegex(@"[,;]|\b(?:and|or)\b", RegexOptions.IgnoreCase)]
    private static partial Regex Separator();

    /// <summary>A percent marker right after a box or math span (past closing $ or \) \]).</summary>
    [GeneratedRegex(@"^(?:\s*(?:\$|\\\)|\\\]))*\s*(?:\\?%|percentage\b|percent\b|pct\b)", RegexOptions.IgnoreCase)]
    internal static partial Regex PercentAfter();
}
