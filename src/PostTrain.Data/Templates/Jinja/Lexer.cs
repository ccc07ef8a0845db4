// Splits a template into tokens the way jinja2's lexer does with trim_blocks and lstrip_blocks on (the
// transformers environment): newlines are normalised to \n and one trailing newline of the source is dropped
// (keep_trailing_newline=False); "{%-", "{{-", "{#-" strip all whitespace before the tag and "-%}", "-}}",
// "-#}" all whitespace after it; a block or comment tag drops the one newline right after it (trim_blocks,
// unless written "+%}"), and spaces/tabs from the start of its line up to the tag when only those precede it
// (lstrip_blocks, unless written "{%+"). {% raw %}...{% endraw %} is passed through as text.
using System.Globalization;
using System.Text;

namespace PostTrain.Data.Templates.Jinja;

public sealed class Lexer
{
    private readonly string _src;
    private int _pos, _line = 1;
    private readonly List<Token> _tokens = [];
    private bool _lineStarting = true;

    private Lexer(string source)
    {
        var lines = source.Replace("\r\n", "\n").Replace('\r', '\n').Split('\n').ToList();
        if (lines.Count > 1 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        _src = string.Join('\n', lines);
    }

    public static List<Token> Tokenize(string source) => new Lexer(source).Run();

    private List<Token> Run()
    {
        while (_pos < _src.Length)
        {
            int tag = FindTagStart(_pos);
            string text = _src[_pos..(tag < 0 ? _src.Length : tag)];
            if (tag < 0) { AddText(text); _pos = _src.Length; break; }
            char kind = _src[tag + 1];
            char sign = tag + 2 < _src.Length ? _src[tag + 2] : '\0';
            if (sign == '-') text = PyStr.Strip(text, null, left: false);
            else if (sign != '+' && kind != '{')
            {
                int lpos = text.LastIndexOf('\n') + 1;
                if ((lpos > 0 || _lineStarting) && lpos < text.Length && text[lpos..].All(PyStr.IsSpace)) text = text[..lpos];
            }
            AddText(text);
            _line += Count(_src, _pos, tag);
            _pos = tag + 2 + (sign is '-' or '+' ? 1 : 0);
            switch (kind)
            {
                case '#': Comment(); break;
                case '{': Tag(TokenKind.VariableBegin, TokenKind.VariableEnd, '}'); break;
                default: Tag(TokenKind.BlockBegin, TokenKind.BlockEnd, '%'); break;
            }
        }
        _tokens.Add(new Token(TokenKind.End, "", _line));
        return _tokens;
    }

    private int FindTagStart(int from)
    {
        for (int i = from; i + 1 < _src.Length; i++)
            if (_src[i] == '{' && _src[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    private void AddText(string text)
    {
        if (text.Length > 0) _tokens.Add(new Token(TokenKind.Text, text, _line));
    }

    private static int Count(string s, int from, int to)
    {
        int n = 0;
        for (int i = from; i < to; i++) if (s[i] == '\n') n++;
        return n;
    }

    /// <summary>After a closing delimiter: "-" strips all whitespace, a block/comment drops one newline (trim_blocks).</summary>
    private void AfterClose(bool minus, bool plus, bool trim)
    {
        int start = _pos;
        if (minus) while (_pos < _src.Length && PyStr.IsSpace(_src[_pos])) _pos++;
        else if (trim && !plus && _pos < _src.Length && _src[_pos] == '\n') _pos++;
        _line += Count(_src, start, _pos);
        _lineStarting = _pos > 0 && _src[_pos - 1] == '\n';
    }

    private void Comment()
    {
        int startLine = _line;
        int end = _src.IndexOf("#}", _pos, StringComparison.Ordinal);
        if (end < 0) throw JinjaException.Syntax("missing end of comment tag", startLine);
        bool minus = end > _pos && _src[end - 1] == '-', plus = end > _pos && _src[end - 1] == '+';
        _line += Count(_src, _pos, end);
        _pos = end + 2;
        AfterClose(minus, plus, trim: true);
    }

    private void Tag(TokenKind begin, TokenKind endKind, char close)
    {
        int tagLine = _line;
        _tokens.Add(new Token(begin, "", _line));
        int first = _tokens.Count;
        while (true)
        {
            SkipSpace();
            if (_pos >= _src.Length) throw JinjaException.Syntax($"unexpected end of template, expected '{close}}}'", tagLine);
            char c = _src[_pos];
            // the closing delimiter, optionally with whitespace control
            if ((c == '-' || c == '+') && At(_pos + 1, close) && At(_pos + 2, '}'))
            {
                _pos += 3;
                _tokens.Add(new Token(endKind, "", _line));
                AfterClose(minus: c == '-', plus: c == '+', trim: endKind == TokenKind.BlockEnd);
                break;
            }
            if (c == close && At(_pos + 1, '}'))
            {
                _pos += 2;
                _tokens.Add(new Token(endKind, "", _line));
                AfterClose(minus: false, plus: false, trim: endKind == TokenKind.BlockEnd);
                break;
            }
            ExpressionToken();
        }
        if (begin == TokenKind.BlockBegin && _tokens.Count == first + 2 && _tokens[first].IsName("raw")) Raw(tagLine);
    }

    /// <summary>{% raw %}: everything up to {% endraw %} is text.</summary>
    private void Raw(int line)
    {
        _tokens.RemoveRange(_tokens.Count - 3, 3);
        int search = _pos;
        while (true)
        {
            int tag = _src.IndexOf("{%", search, StringComparison.Ordinal);
            if (tag < 0) throw JinjaException.Syntax("missing {% endraw %}", line);
            int p = tag + 2;
            bool minus = At(p, '-');
            if (minus || At(p, '+')) p++;
            while (p < _src.Length && PyStr.IsSpace(_src[p])) p++;
            if (string.CompareOrdinal(_src, p, "endraw", 0, 6) == 0)
            {
                int q = p + 6;
                while (q < _src.Length && PyStr.IsSpace(_src[q])) q++;
                bool closeMinus = At(q, '-'), closePlus = At(q, '+');
                if (closeMinus || closePlus) q++;
                if (At(q, '%') && At(q + 1, '}'))
                {
                    var text = _src[_pos..tag];
                    if (minus) text = PyStr.Strip(text, null, left: false);
                    AddText(text);
                    _line += Count(_src, _pos, q + 2);
                    _pos = q + 2;
                    AfterClose(closeMinus, closePlus, trim: true);
                    return;
                }
            }
            search = tag + 2;
        }
    }

    private bool At(int i, char c) => i < _src.Length && _src[i] == c;

    private void SkipSpace()
    {
        while (_pos < _src.Length && PyStr.IsSpace(_src[_pos])) { if (_src[_pos] == '\n') _line++; _pos++; }
    }

    private static readonly string[] Operators =
        ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", ".", ",", ":", "|", "(", ")", "[", "]", "{", "}"];

    private void ExpressionToken()
    {
        char c = _src[_pos];
        if (char.IsLetter(c) || c == '_')
        {
            int s = _pos;
            while (_pos < _src.Length && (char.IsLetterOrDigit(_src[_pos]) || _src[_pos] == '_')) _pos++;
            _tokens.Add(new Token(TokenKind.Name, _src[s.._pos], _line));
            return;
        }
        if (char.IsAsciiDigit(c)) { Number(); return; }
        if (c is '"' or '\'') { StringLiteral(c); return; }
        foreach (var op in Operators)
            if (string.CompareOrdinal(_src, _pos, op, 0, op.Length) == 0)
            {
                _pos += op.Length;
                _tokens.Add(new Token(TokenKind.Operator, op, _line));
                return;
            }
        throw JinjaException.Syntax($"unexpected char '{c}'", _line);
    }

    private void Number()
    {
        int s = _pos;
        while (_pos < _src.Length && (char.IsAsciiDigit(_src[_pos]) || _src[_pos] == '_')) _pos++;
        bool isFloat = false;
        if (At(_pos, '.') && _pos + 1 < _src.Length && char.IsAsciiDigit(_src[_pos + 1]))
        {
            isFloat = true;
            _pos++;
            while (_pos < _src.Length && (char.IsAsciiDigit(_src[_pos]) || _src[_pos] == '_')) _pos++;
        }
        if (_pos < _src.Length && _src[_pos] is 'e' or 'E')
        {
            int e = _pos + 1;
            if (e < _src.Length && _src[e] is '+' or '-') e++;
            if (e < _src.Length && char.IsAsciiDigit(_src[e]))
            {
                isFloat = true;
                _pos = e;
                while (_pos < _src.Length && char.IsAsciiDigit(_src[_pos])) _pos++;
            }
        }
        var text = _src[s.._pos].Replace("_", "");
        _tokens.Add(new Token(isFloat ? TokenKind.Float : TokenKind.Integer, text, _line));
    }

    /// <summary>A quoted literal, unescaped as Python's unicode-escape codec does (as jinja2 does).</summary>
    private void StringLiteral(char quote)
    {
        int line = _line;
        var sb = new StringBuilder();
        _pos++;
        while (true)
        {
            if (_pos >= _src.Length) throw JinjaException.Syntax("unterminated string literal", line);
            char c = _src[_pos++];
            if (c == quote) break;
            if (c == '\n') _line++;
            if (c != '\\') { sb.Append(c); continue; }
            if (_pos >= _src.Length) throw JinjaException.Syntax("unterminated string literal", line);
            char e = _src[_pos++];
            switch (e)
            {
                case '\n': _line++; break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'n': sb.Append('\n'); break;
                case 'r': sb.Append('\r'); break;
                case 't': sb.Append('\t'); break;
                case 'v': sb.Append('\v'); break;
                case 'x': sb.Append(char.ConvertFromUtf32(Hex(2, line))); break;
                case 'u': sb.Append(char.ConvertFromUtf32(Hex(4, line))); break;
                case 'U': sb.Append(char.ConvertFromUtf32(Hex(8, line))); break;
                case >= '0' and <= '7':
                    {
                        int v = e - '0', n = 1;
                        while (n < 3 && _pos < _src.Length && _src[_pos] is >= '0' and <= '7') { v = v * 8 + (_src[_pos++] - '0'); n++; }
                        sb.Append((char)v);
                        break;
                    }
                default: sb.Append('\\').Append(e); break;
            }
        }
        _tokens.Add(new Token(TokenKind.String, sb.ToString(), line));
    }

    private int Hex(int digits, int line)
    {
        if (_pos + digits > _src.Length || !int.TryParse(_src.AsSpan(_pos, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var v))
            throw JinjaException.Syntax("truncated \\x/\\u escape in a string literal", line);
        _pos += digits;
        return v;
    }
}
