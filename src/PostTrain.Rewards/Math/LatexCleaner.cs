// String-level clean-up of one answer before parsing: strips math delimiters, spacing and sizing commands
// (\left \right \! \, \displaystyle), rewrites \dfrac/\tfrac/\cfrac, unicode symbols, degrees, currency,
// percent words, \text{} units and trailing unit words, and thousands separators.
// Simplification: units are recognised from a fixed word list, only at the end of the answer.
using System.Text.RegularExpressions;

namespace PostTrain.Rewards.Math;

internal static partial class LatexCleaner
{
    public static string Clean(string s)
    {
        s = StripDelimiters(s.Trim());
        if (!s.Contains("matrix", StringComparison.Ordinal) && !s.Contains("array", StringComparison.Ordinal))
            s = DoubledBackslash().Replace(s, @"\"); // "\\frac" written with doubled escapes
        s = EmptyComma().Replace(s, ",");
        foreach (var (from, to) in Replacements) s = s.Replace(from, to, StringComparison.Ordinal);
        s = SizingCommand().Replace(s, "");
        s = DropApproximation(s);
        s = NegativeSpace().Replace(s, "");
        s = SpacingCommand().Replace(s, " ");
        s = FracVariant().Replace(s, @"\frac");
        s = BinomVariant().Replace(s, @"\binom");
        s = Degrees().Replace(s, "");
        s = PercentWord().Replace(s, "%");
        s = s.Replace(@"\%", "%", StringComparison.Ordinal);
        s = s.Replace(@"\$", "", StringComparison.Ordinal).Replace("$", "", StringComparison.Ordinal);
        s = InfinityWord().Replace(s, @"\infty");
        s = TextCommands(s);
        s = AndOrWord().Replace(s, ",");
        s = RepeatedComma().Replace(s, ",");
        s = StripUnits(s);
        s = ElementOf().Replace(s, "");
        s = Thousands(s);
        return s.Trim().TrimEnd('.', ';').Trim();
    }

    private static readonly (string From, string To)[] Replacements =
    [
        ("\u2212", "-"), ("\u2013", "-"), ("\u00d7", @"\times "), ("\u00b7", @"\cdot "), ("\u22c5", @"\cdot "),
        ("\u00f7", @"\div "), ("\u03c0", @"\pi "), ("\u221a", @"\sqrt"), ("\u221e", @"\infty "),
        ("\u2264", @"\le "), ("\u2265", @"\ge "), ("\u2260", @"\ne "), ("\u222a", @"\cup "), ("\u2229", @"\cap "),
        ("\u00b2", "^2"), ("\u00b3", "^3"), ("\u00b0", @"^\circ"), ("{,}", ","), (@"\displaystyle", ""),
        (@"\dots", ""), (@"\ldots", ""), (@"\cdots", ""), (@"\textdollar", ""), ("\u20ac", ""), ("\u00a3", ""),
        (@"\emptyset", @"\{\}"), (@"\varnothing", @"\{\}"), (@"\lbrace", @"\{"), (@"\rbrace", @"\}"),
        (@"\lvert", "|"), (@"\rvert", "|"), (@"\vert", "|"), (@"\mid", "|"), (@"\lt", "<"), (@"\gt", ">"),
    ];

    /// <summary>$...$, $$...$$, \(...\), \[...\] around the whole answer.</summary>
    private static string StripDelimiters(string s)
    {
        for (var again = true; again;)
        {
            again = false;
            foreach (var (open, close) in new[] { ("$$", "$$"), ("$", "$"), (@"\(", @"\)"), (@"\[", @"\]") })
            {
                if (s.Length >= open.Length + close.Length && s.StartsWith(open, StringComparison.Ordinal)
                    && s.EndsWith(close, StringComparison.Ordinal))
                {
                    s = s[open.Length..^close.Length].Trim();
                    again = true;
                    break;
                }
            }
        }
        return s;
    }

    /// <summary>"x = 1/3 \approx 0.33": the exact part before the first \approx; without an "=" before it,
    /// \approx reads as "=" ("x \approx 11").</summary>
    private static string DropApproximation(string s)
    {
        s = s.Replace("\u2248", @"\approx ", StringComparison.Ordinal);
        var at = s.IndexOf(@"\approx", StringComparison.Ordinal);
        return at > 0 && s[..at].Contains('=') ? s[..at] : s;
    }

    /// <summary>\text{..}, \mathrm{..} and friends: "and"/"or" become commas, words become units (dropped
    /// unless they are the whole answer), math content is kept.</summary>
    private static string TextCommands(string s)
    {
        for (var guard = 0; guard < 50; guard++)
        {
            var m = TextCommand().Match(s);
            if (!m.Success) break;
            var cmd = m.Groups[1].Value;
            var content = m.Groups[2].Value.Trim();
            string replacement;
            if (cmd == "operatorname")
                replacement = Parser.IsFunctionName(content) ? "\\" + content + " " : content;
            else if (content.Length == 0) replacement = " ";
            else if (AndOr().IsMatch(content)) replacement = ",";
            else if (content.Length == 1 || !WordOnly().IsMatch(content)) replacement = " " + content + " ";
            else if (m.Index == 0 && m.Length == s.Length) return "\\text{" + content + "}";
            else replacement = " \\unit ";
            s = s[..m.Index] + replacement + s[(m.Index + m.Length)..];
        }
        // a unit may carry a power: "5 \unit^2"
        s = UnitPower().Replace(s, " ");
        return s.Trim();
    }

    private static string StripUnits(string s)
    {
        for (var i = 0; i < 3; i++)
        {
            var m = TrailingUnit().Match(s);
            if (!m.Success) break;
            var rest = s[..m.Index].TrimEnd();
            var unit = m.Groups["u"].Value;
            // single letters (m, g, s, h, l) may be variables: strip them only after a plain number
            if (unit.Length == 1 && !EndsWithNumber().IsMatch(rest)) break;
            if (rest.Length == 0) break;
            s = rest;
        }
        return s;
    }

    /// <summary>1,000,000 -> 1000000 outside brackets; "1 000" -> 1000 when it is the whole answer.</summary>
    private static string Thousands(string s)
    {
        var t = s.Trim();
        var bracketed = t.Length > 1 && (t[0] is '(' or '[' or '{' || t.StartsWith(@"\{", StringComparison.Ordinal));
        if (!bracketed) s = ThousandsComma().Replace(s, m => m.Value.Replace(",", "", StringComparison.Ordinal));
        if (ThousandsSpace().IsMatch(s.Trim())) s = s.Replace(" ", "", StringComparison.Ordinal);
        return s;
    }

    [GeneratedRegex(@"\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|big|Big|bigg|Bigg|middle)(?![a-zA-Z])\.?")]
    private static partial Regex SizingCommand();

    [GeneratedRegex(@"(?<!\\)\\[,;: ]|\\q?quad|~|\\hspace\{[^}]*\}|\\(?:mathstrut|strut)(?![a-zA-Z])")]
    private static partial Regex SpacingCommand();

    [GeneratedRegex(@"\\\\(?=[a-zA-Z])")]
    private static partial Regex DoubledBackslash();

    [GeneratedRegex(@"\s*\{\s*,\s*\}\s*")]
    private static partial Regex EmptyComma();

    [GeneratedRegex(@"\\!\s*")]
    private static partial Regex NegativeSpace();

    [GeneratedRegex(@"\\[dtc]frac(?![a-zA-Z])")]
    private static partial Regex FracVariant();

    [GeneratedRegex(@"\\[dt]binom(?![a-zA-Z])")]
    private static partial Regex BinomVariant();

    [GeneratedRegex(@"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![a-zA-Z])|\\circ(?![a-zA-Z])|\^\s*\{\s*\\degree\s*\}|\\degree(?![a-zA-Z])|\s*\bdegrees?\b")]
    private static partial Regex Degrees();

    [GeneratedRegex(@"\s*(?:\\text\{\s*)?\b(?:percentage|percent|pct)\b(?:\s*\})?", RegexOptions.IgnoreCase)]
    private static partial Regex PercentWord();

    [GeneratedRegex(@"(?<![\\a-zA-Z])(?:infinity|inf)(?![a-zA-Z])")]
    private static partial Regex InfinityWord();

    [GeneratedRegex(@"\\(text|textbf|textit|textrm|textnormal|textsf|texttt|mathrm|mathbf|mathit|mathsf|mathtt|mbox|operatorname|boldsymbol)\s*\{([^{}]*)\}")]
    private static partial Regex TextCommand();

    [GeneratedRegex(@"\s*,?\s*(?<![A-Za-z\\])(?:and|or)(?![A-Za-z])\s*")]
    private static partial Regex AndOrWord();

    [GeneratedRegex(@",(?:\s*,)+")]
    private static partial Regex RepeatedComma();

    [GeneratedRegex(@"^,?\s*(?:and|or)$", RegexOptions.IgnoreCase)]
    private static partial Regex AndOr();

    [GeneratedRegex(@"^[A-Za-z][A-Za-z\s\.'-]*$")]
    private static partial Regex WordOnly();

    [GeneratedRegex(@"\s*\\unit\s*(?:\^\s*\{?\s*[23]\s*\}?)?")]
    private static partial Regex UnitPower();

    [GeneratedRegex(@"(?<=[\d}\)\s%])\s*(?<u>square\s+(?:feet|foot|meters?|metres?|inch(?:es)?|units?|miles?|yards?|centimeters?|cm|m|km|ft)|sq\.?\s*(?:ft|m|cm|in|units?)|cubic\s+(?:feet|meters?|inch(?:es)?|units?|cm|centimeters?)|km|cm|mm|m|kg|mg|g|lbs?|oz|ml|mL|l|L|s|sec|secs|seconds?|minutes?|mins?|hours?|hrs?|h|days?|weeks?|months?|years?|dollars?|cents?|units?|feet|foot|ft|inch(?:es)?|yards?|yd|miles?|mph|kmh|km/h|m/s|meters?|metres?|liters?|litres?|gallons?|pounds?|ounces?|grams?|kilograms?|centimeters?|millimeters?|kilometers?|people|persons?|students?|times|ways|items?|cups?|pages?|marbles|apples|cookies|boxes|books|points?|steps|hats|coins|\\unit)(?:\s*\^\s*\{?\s*[23]\s*\}?)?\s*$")]
    private static partial Regex TrailingUnit();

    [GeneratedRegex(@"(?:^|[=\s])-?[\d.,]+$")]
    private static partial Regex EndsWithNumber();

    [GeneratedRegex(@"^\s*[a-zA-Z]\s*\\in(?![a-zA-Z])\s*")]
    private static partial Regex ElementOf();

    [GeneratedRegex(@"(?<![\d.])(?<!\d,)[1-9]\d{0,2}(?:,\d{3})+(?!\d|,\d)")]
    private static partial Regex ThousandsComma();

    [GeneratedRegex(@"^-?[1-9]\d{0,2}(?: \d{3})+(?:\.\d+)?$")]
    private static partial Regex ThousandsSpace();
}
