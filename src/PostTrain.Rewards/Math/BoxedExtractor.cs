// Finds \boxed{...} / \fbox{...} contents with nested braces. The last box is the answer; boxes just before
// it (separated by at most a short gap such as ", " or " and ") join it, in order, as a bare list "a, b".
// Repeated identical boxes count once. An unclosed last box yields the text after its brace.
namespace PostTrain.Rewards.Math;

internal static class BoxedExtractor
{
    private const int NearGap = 10;   // characters between boxes that always join them
    private const int SeparatedGap = 70; // a longer gap joins them when it contains "and", "or", "," or ";"

    public static string? Extract(string text)
    {
        var boxes = new List<(int Start, int End, string Content)>();
        var searchEnd = text.Length;
        while (searchEnd > 0)
        {
            var b = text.LastIndexOf(@"\boxed", searchEnd - 1, StringComparison.Ordinal);
            var f = text.LastIndexOf(@"\fbox", searchEnd - 1, StringComparison.Ordinal);
            var start = System.Math.Max(b, f);
            if (start < 0) break;
            var cmdEnd = start + (start == b ? 6 : 5);
            var content = ReadArgument(text, cmdEnd, out var end);
            searchEnd = start;
            if (content is null) continue;
            if (boxes.Count > 0)
            {
                if (end > boxes[^1].Start) break; // an unbalanced box that swallows the later one
                var gap = text[end..boxes[^1].Start];
                var joins = gap.Length < NearGap || (gap.Length < SeparatedGap && HasSeparator(gap));
                if (!joins) break;
                if (boxes[^1].Content == content) { boxes[^1] = (start, boxes[^1].End, content); continue; }
            }
            else if (end > text.Length) return content; // unclosed last box
            boxes.Add((start, end, content));
        }
        if (boxes.Count == 0) return null;
        boxes.Reverse();
        return string.Join(", ", boxes.Select(x => x.Content));
    }

    private static bool HasSeparator(string gap) =>
        gap.Contains(',') || gap.Contains(';') || gap.Contains(" and ", StringComparison.OrdinalIgnoreCase)
        || gap.Contains(" or ", StringComparison.OrdinalIgnoreCase);

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
}
