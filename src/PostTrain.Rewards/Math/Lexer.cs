// Splits a cleaned answer (LaTeX or plain math) into tokens. Plain letter runs are split into known
// function names (sin, sqrt, ln, ...) and single-letter variables, so "2xy" is 2*x*y and "sinx" is sin(x).
namespace PostTrain.Rewards.Math;

internal enum Tok
{
    Num, Ident, Cmd, Begin, End, LBrace, RBrace, LParen, RParen, LBrack, RBrack, SetOpen, SetClose,
    Plus, Minus, Star, Slash, Caret, Under, Bang, Comma, Semi, Rel, Pipe, Amp, RowSep, Percent, Prime, Eof,
}

internal sealed record Token(Tok Kind, string Text);

internal sealed class ParseException(string message) : Exception(message);

internal static class Lexer
{
    private static readonly string[] PlainNames =
        ["arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "sqrt", "sin", "cos", "tan", "sec", "csc", "cot",
         "exp", "abs", "ln", "log", "pi"];

    public static List<Token> Lex(string s, Budget budget)
    {
        var tokens = new List<Token>();
        var i = 0;
        while (i < s.Length)
        {
            budget.Tick();
            var c = s[i];
            if (char.IsWhiteSpace(c)) { i++; continue; }
            if (char.IsAsciiDigit(c) || (c == '.' && i + 1 < s.Length && char.IsAsciiDigit(s[i + 1])))
            {
                var start = i;
                while (i < s.Length && char.IsAsciiDigit(s[i])) i++;
                if (i + 1 < s.Length && s[i] == '.' && char.IsAsciiDigit(s[i + 1]))
                {
                    i++;
                    while (i < s.Length && char.IsAsciiDigit(s[i])) i++;
                }
                else if (i < s.Length && s[i] == '.' && (i + 1 == s.Length || !char.IsAsciiLetter(s[i + 1]))) i++; // "5." = 5
                tokens.Add(new Token(Tok.Num, s[start..i].TrimEnd('.')));
                continue;
            }
            if (c == '\\') { i = LexCommand(s, i, tokens); continue; }
            if (char.IsLetter(c))
            {
                var start = i;
                while (i < s.Length && char.IsLetter(s[i]) && s[i] < 128) i++;
                if (i == start) { tokens.Add(new Token(Tok.Ident, c.ToString())); i++; continue; } // Greek etc.
                SplitLetters(s[start..i], tokens);
                continue;
            }
            var two = i + 1 < s.Length ? s.Substring(i, 2) : "";
            switch (two)
            {
                case "**": tokens.Add(new Token(Tok.Caret, "^")); i += 2; continue;
                case "<=": case "=<": tokens.Add(new Token(Tok.Rel, "<=")); i += 2; continue;
                case ">=": case "=>": tokens.Add(new Token(Tok.Rel, ">=")); i += 2; continue;
                case "!=": case "<>": tokens.Add(new Token(Tok.Rel, "!=")); i += 2; continue;
                case "==": tokens.Add(new Token(Tok.Rel, "=")); i += 2; continue;
            }
            Tok? kind = c switch
            {
                '{' => Tok.LBrace, '}' => Tok.RBrace, '(' => Tok.LParen, ')' => Tok.RParen, '[' => Tok.LBrack,
                ']' => Tok.RBrack, '+' => Tok.Plus, '-' => Tok.Minus, '*' => Tok.Star, '/' => Tok.Slash,
                '^' => Tok.Caret, '_' => Tok.Under, '!' => Tok.Bang, ',' => Tok.Comma, ';' => Tok.Semi,
                ':' => Tok.Slash, // a ratio 7:32
                '|' => Tok.Pipe, '&' => Tok.Amp, '%' => Tok.Percent, '\'' => Tok.Prime,
                '=' or '<' or '>' => Tok.Rel, _ => null,
            };
            if (kind is null) throw new ParseException($"unexpected character '{c}'");
            tokens.Add(new Token(kind.Value, c.ToString()));
            i++;
        }
        tokens.Add(new Token(Tok.Eof, ""));
        return tokens;
    }

    private static int LexCommand(string s, int i, List<Token> tokens)
    {
        if (i + 1 >= s.Length) throw new ParseException("dangling backslash");
        var n = s[i + 1];
        if (!char.IsAsciiLetter(n))
        {
            Token t = n switch
            {
                '{' => new(Tok.SetOpen, "{"), '}' => new(Tok.SetClose, "}"), '\\' => new(Tok.RowSep, @"\\"),
                '|' => new(Tok.Pipe, "|"), _ => throw new ParseException($"unknown command \\{n}"),
            };
            tokens.Add(t);
            return i + 2;
        }
        var j = i + 1;
        while (j < s.Length && char.IsAsciiLetter(s[j])) j++;
        var name = s[(i + 1)..j];
        if (name is "begin" or "end")
        {
            var k = j;
            while (k < s.Length && s[k] == ' ') k++;
            var close = k < s.Length && s[k] == '{' ? s.IndexOf('}', k) : -1;
            if (close < 0) throw new ParseException($"\\{name} without environment name");
            var env = s[(k + 1)..close].Trim().TrimEnd('*');
            tokens.Add(new Token(name == "begin" ? Tok.Begin : Tok.End, env));
            j = close + 1;
            if (name == "begin" && env == "array" && j < s.Length && s[j] == '{') // skip column spec {cc}
                j = s.IndexOf('}', j) + 1;
            return j;
        }
        tokens.Add(name switch
        {
            "le" or "leq" or "leqslant" => new Token(Tok.Rel, "<="),
            "ge" or "geq" or "geqslant" => new Token(Tok.Rel, ">="),
            "ne" or "neq" => new Token(Tok.Rel, "!="),
            "approx" or "simeq" or "equiv" => new Token(Tok.Rel, "="),
            "times" or "cdot" or "ast" => new Token(Tok.Star, "*"),
            "div" => new Token(Tok.Slash, "/"),
            "colon" => new Token(Tok.Slash, "/"),
            _ => new Token(Tok.Cmd, name),
        });
        return j;
    }

    private static void SplitLetters(string run, List<Token> tokens)
    {
        var i = 0;
        while (i < run.Length)
        {
            var name = PlainNames.FirstOrDefault(p => string.CompareOrdinal(run, i, p, 0, p.Length) == 0);
            if (name is not null)
            {
                tokens.Add(new Token(Tok.Cmd, name));
                i += name.Length;
            }
            else
            {
                tokens.Add(new Token(Tok.Ident, run[i].ToString()));
                i++;
            }
        }
    }
}
