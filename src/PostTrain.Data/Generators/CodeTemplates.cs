// The function families of the code-synthesis task (datasets/code): 9 per category, levels 1-3. Each has random
// constants so a family yields many distinct functions (numbers up to 999 where the function allows: too many to learn
// one by one, so a model has to read them off the description); DatasetFiles.Code keeps the families named in TestOnly out of
// the training split. The evaluators are plain C#, written apart from the JavaScript and C# reference bodies, so the
// sandbox test that runs the references against the evaluators' expected values checks all three.
namespace PostTrain.Data.Generators;

public static class CodeTemplates
{
    /// <summary>Letters used by the string families (and as their constant letters).</summary>
    public const string Letters = "abcdeorstx";

    /// <summary>Families only in the test split: two per category, so "held-out" means a function never trained on.</summary>
    public static readonly IReadOnlySet<string> TestOnly = new HashSet<string>(StringComparer.Ordinal)
        { "sumSquares", "roundDown", "lastChars", "isPalindrome", "minList", "belowOnly", "isBetween", "parity" };

    private static readonly CodeParam N = new("n", CodeType.Int), A = new("a", CodeType.Int), B = new("b", CodeType.Int),
        S = new("s", CodeType.Str), Xs = new("xs", CodeType.IntList);

    public static readonly IReadOnlyList<CodeTemplate> All =
    [
        // arithmetic
        new("addConst", "arithmetic", 1, [N], CodeType.Int, r => [r.Next(1, 999)],
            c => $"returns n plus {c[0]}", c => $"return n + {c[0]};", c => $"return n + {c[0]};",
            (c, a) => (int)a[0] + c[0], r => [r.Next(-50, 50)]) { WideConstants = r => [r.Next(1, 99_999)] },
        new("scaleAdd", "arithmetic", 1, [N], CodeType.Int, r => [r.Next(2, 9), r.Next(1, 999)],
            c => $"returns n times {c[0]} plus {c[1]}", c => $"return n * {c[0]} + {c[1]};", c => $"return n * {c[0]} + {c[1]};",
            (c, a) => (int)a[0] * c[0] + c[1], r => [r.Next(-30, 30)]) { WideConstants = r => [r.Next(2, 9), r.Next(1, 99_999)] },
        new("absDiff", "arithmetic", 1, [A, B], CodeType.Int, _ => [],
            _ => "returns the absolute difference between a and b", _ => "return Math.abs(a - b);", _ => "return Math.Abs(a - b);",
            (_, a) => (int)a[0] > (int)a[1] ? (int)a[0] - (int)a[1] : (int)a[1] - (int)a[0], r => [r.Next(-50, 50), r.Next(-50, 50)]),
        new("sumTo", "arithmetic", 2, [N], CodeType.Int, _ => [],
            _ => "returns the sum of the integers from 1 to n (0 when n is less than 1)",
            _ => "let s = 0;\nfor (let i = 1; i <= n; i++) s += i;\nreturn s;",
            _ => "int s = 0;\nfor (int i = 1; i <= n; i++) s += i;\nreturn s;",
            (_, a) => (int)a[0] < 1 ? 0 : (int)a[0] * ((int)a[0] + 1) / 2, r => [r.Next(-3, 60)]),
        new("digitSum", "arithmetic", 2, [N], CodeType.Int, _ => [],
            _ => "returns the sum of the decimal digits of the non-negative integer n",
            _ => "let s = 0;\nwhile (n > 0) {\n    s += n % 10;\n    n = Math.floor(n / 10);\n}\nreturn s;",
            _ => "int s = 0;\nwhile (n > 0)\n{\n    s += n % 10;\n    n /= 10;\n}\nreturn s;",
            (_, a) => ((int)a[0]).ToString(System.Globalization.CultureInfo.InvariantCulture).Sum(ch => ch - '0'), r => [r.Next(0, 99999)]),
        new("countMultiples", "arithmetic", 2, [N], CodeType.Int, r => [r.Next(2, 12)],
            c => $"returns how many of the integers from 1 to n are divisible by {c[0]}",
            c => $"let k = 0;\nfor (let i = 1; i <= n; i++) if (i % {c[0]} === 0) k++;\nreturn k;",
            c => $"int k = 0;\nfor (int i = 1; i <= n; i++) if (i % {c[0]} == 0) k++;\nreturn k;",
            (c, a) => (int)a[0] / c[0], r => [r.Next(0, 100)]) { WideConstants = r => [r.Next(2, 999)] },
        new("powerOf", "arithmetic", 2, [N], CodeType.Int, r => [r.Next(2, 5)],
            c => $"returns {c[0]} raised to the power n, for n from 0 to 10",
            c => $"let r = 1;\nfor (let i = 0; i < n; i++) r *= {c[0]};\nreturn r;",
            c => $"int r = 1;\nfor (int i = 0; i < n; i++) r *= {c[0]};\nreturn r;",
            (c, a) => (int)System.Math.Pow(c[0], (int)a[0]), r => [r.Next(0, 10)]),
        new("sumSquares", "arithmetic", 2, [N], CodeType.Int, _ => [],
            _ => "returns 1*1 + 2*2 + ... + n*n (0 when n is less than 1)",
            _ => "let s = 0;\nfor (let i = 1; i <= n; i++) s += i * i;\nreturn s;",
            _ => "int s = 0;\nfor (int i = 1; i <= n; i++) s += i * i;\nreturn s;",
            (_, a) => (int)a[0] < 1 ? 0 : (int)a[0] * ((int)a[0] + 1) * (2 * (int)a[0] + 1) / 6, r => [r.Next(-2, 30)]),
        new("roundDown", "arithmetic", 1, [N], CodeType.Int, r => [r.Next(2, 10)],
            c => $"returns the non-negative integer n rounded down to a multiple of {c[0]}",
            c => $"return n - n % {c[0]};", c => $"return n - n % {c[0]};",
            (c, a) => (int)a[0] / c[0] * c[0], r => [r.Next(0, 200)]),

        // string
        new("repeatText", "string", 1, [S], CodeType.Str, r => [r.Next(2, 6)],
            c => $"returns s repeated {c[0]} times", c => $"return s.repeat({c[0]});",
            c => $"return string.Concat(Enumerable.Repeat(s, {c[0]}));",
            (c, a) => new System.Text.StringBuilder().Insert(0, (string)a[0], c[0]).ToString(), r => [Text(r, 0, 5)]),
        new("firstChars", "string", 1, [S], CodeType.Str, r => [r.Next(1, 6)],
            c => $"returns the first {c[0]} characters of s (all of s when it is shorter)",
            c => $"return s.slice(0, {c[0]});", c => $"return s.Length <= {c[0]} ? s : s.Substring(0, {c[0]});",
            (c, a) => new string(((string)a[0]).Take(c[0]).ToArray()), r => [Text(r, 0, 8)]),
        new("wrapText", "string", 1, [S], CodeType.Str, r => [r.Next(0, 9), r.Next(0, 9)],
            c => $"returns s with \"{Letters[c[0]]}\" added in front and \"{Letters[c[1]]}\" added at the end",
            c => $"return \"{Letters[c[0]]}\" + s + \"{Letters[c[1]]}\";", c => $"return \"{Letters[c[0]]}\" + s + \"{Letters[c[1]]}\";",
            (c, a) => $"{Letters[c[0]]}{a[0]}{Letters[c[1]]}", r => [Text(r, 0, 6)]),
        new("toUpper", "string", 1, [S], CodeType.Str, _ => [],
            _ => "returns s in upper case", _ => "return s.toUpperCase();", _ => "return s.ToUpperInvariant();",
            (_, a) => new string(((string)a[0]).Select(ch => (char)(ch - 'a' + 'A')).ToArray()), r => [Text(r, 0, 8)]),
        new("reverseText", "string", 2, [S], CodeType.Str, _ => [],
            _ => "returns s reversed", _ => "return s.split(\"\").reverse().join(\"\");",
            _ => "char[] a = s.ToCharArray();\nArray.Reverse(a);\nreturn new string(a);",
            (_, a) => new string(((string)a[0]).Reverse().ToArray()), r => [Text(r, 0, 8)]),
        new("countLetter", "string", 2, [S], CodeType.Int, r => [r.Next(0, 9)],
            c => $"returns how many times the letter '{Letters[c[0]]}' occurs in s",
            c => $"let k = 0;\nfor (const ch of s) if (ch === \"{Letters[c[0]]}\") k++;\nreturn k;",
            c => $"int k = 0;\nforeach (char ch in s) if (ch == '{Letters[c[0]]}') k++;\nreturn k;",
            (c, a) => ((string)a[0]).Count(ch => ch == Letters[c[0]]), r => [Text(r, 0, 10)]),
        new("removeLetter", "string", 2, [S], CodeType.Str, r => [r.Next(0, 9)],
            c => $"returns s with every '{Letters[c[0]]}' removed",
            c => $"return s.split(\"{Letters[c[0]]}\").join(\"\");", c => $"return s.Replace(\"{Letters[c[0]]}\", \"\");",
            (c, a) => new string(((string)a[0]).Where(ch => ch != Letters[c[0]]).ToArray()), r => [Text(r, 0, 10)]),
        new("lastChars", "string", 1, [S], CodeType.Str, r => [r.Next(1, 4)],
            c => $"returns the last {c[0]} characters of s (all of s when it is shorter)",
            c => $"return s.slice(Math.max(0, s.length - {c[0]}));", c => $"return s.Length <= {c[0]} ? s : s.Substring(s.Length - {c[0]});",
            (c, a) => new string(((string)a[0]).TakeLast(c[0]).ToArray()), r => [Text(r, 0, 8)]),
        new("isPalindrome", "string", 2, [S], CodeType.Bool, _ => [],
            _ => "returns true when s reads the same forwards and backwards",
            _ => "return s === s.split(\"\").reverse().join(\"\");",
            _ => "for (int i = 0, j = s.Length - 1; i < j; i++, j--)\n    if (s[i] != s[j]) return false;\nreturn true;",
            (_, a) => ((string)a[0]).SequenceEqual(((string)a[0]).Reverse()), r => [Palindromish(r)]),

        // list
        new("sumList", "list", 1, [Xs], CodeType.Int, _ => [],
            _ => "returns the sum of the numbers in xs (0 when xs is empty)", _ => "return xs.reduce((a, b) => a + b, 0);",
            _ => "return xs.Sum();", (_, a) => Ints(a[0]).Aggregate(0, (s, x) => s + x), r => [List(r, 0, 7, -20, 20)]),
        new("maxList", "list", 2, [Xs], CodeType.Int, _ => [],
            _ => "returns the largest number in the non-empty array xs",
            _ => "let m = xs[0];\nfor (const x of xs) if (x > m) m = x;\nreturn m;",
            _ => "int m = xs[0];\nforeach (int x in xs) if (x > m) m = x;\nreturn m;",
            (_, a) => Ints(a[0]).Max(), r => [List(r, 1, 7, -20, 20)]),
        new("countAbove", "list", 2, [Xs], CodeType.Int, r => [r.Next(-20, 20)],
            c => $"returns how many numbers in xs are greater than {c[0]}",
            c => $"return xs.filter(x => x > {c[0]}).length;", c => $"return xs.Count(x => x > {c[0]});",
            (c, a) => Ints(a[0]).Count(x => x > c[0]), r => [List(r, 0, 7, -20, 20)]) { WideConstants = r => [r.Next(-999, 999)] },
        new("addToAll", "list", 2, [Xs], CodeType.IntList, r => [r.Next(1, 999)],
            c => $"returns a new array with {c[0]} added to every number of xs",
            c => $"return xs.map(x => x + {c[0]});", c => $"return xs.Select(x => x + {c[0]}).ToArray();",
            (c, a) => Ints(a[0]).Select(x => x + c[0]).ToArray(), r => [List(r, 0, 6, -20, 20)]) { WideConstants = r => [r.Next(1, 99_999)] },
        new("evensOnly", "list", 3, [Xs], CodeType.IntList, _ => [],
            _ => "returns the even numbers of xs, in order", _ => "return xs.filter(x => x % 2 === 0);",
            _ => "return xs.Where(x => x % 2 == 0).ToArray();",
            (_, a) => Ints(a[0]).Where(x => (x & 1) == 0).ToArray(), r => [List(r, 0, 7, -20, 20)]),
        new("prefixSums", "list", 3, [Xs], CodeType.IntList, _ => [],
            _ => "returns the running sums of xs (element i is xs[0] + ... + xs[i])",
            _ => "const r = [];\nlet s = 0;\nfor (const x of xs) {\n    s += x;\n    r.push(s);\n}\nreturn r;",
            _ => "int[] r = new int[xs.Length];\nint s = 0;\nfor (int i = 0; i < xs.Length; i++)\n{\n    s += xs[i];\n    r[i] = s;\n}\nreturn r;",
            (_, a) => Ints(a[0]).Select((_, i) => Ints(a[0]).Take(i + 1).Sum()).ToArray(), r => [List(r, 0, 6, -20, 20)]),
        new("countEqual", "list", 2, [Xs], CodeType.Int, r => [r.Next(0, 5)],
            c => $"returns how many times {c[0]} occurs in xs",
            c => $"return xs.filter(x => x === {c[0]}).length;", c => $"return xs.Count(x => x == {c[0]});",
            (c, a) => Ints(a[0]).Count(x => x == c[0]), r => [List(r, 0, 8, 0, 5)]) { WideConstants = r => [r.Next(0, 999)] },
        new("minList", "list", 2, [Xs], CodeType.Int, _ => [],
            _ => "returns the smallest number in the non-empty array xs",
            _ => "let m = xs[0];\nfor (const x of xs) if (x < m) m = x;\nreturn m;",
            _ => "int m = xs[0];\nforeach (int x in xs) if (x < m) m = x;\nreturn m;",
            (_, a) => Ints(a[0]).Min(), r => [List(r, 1, 7, -20, 20)]),
        new("belowOnly", "list", 3, [Xs], CodeType.IntList, r => [r.Next(-5, 10)],
            c => $"returns the numbers of xs that are less than {c[0]}, in order",
            c => $"return xs.filter(x => x < {c[0]});", c => $"return xs.Where(x => x < {c[0]}).ToArray();",
            (c, a) => Ints(a[0]).Where(x => x < c[0]).ToArray(), r => [List(r, 0, 7, -20, 20)]),

        // conditional
        new("maxOfTwo", "conditional", 1, [A, B], CodeType.Int, _ => [],
            _ => "returns the larger of a and b", _ => "return a > b ? a : b;", _ => "return a > b ? a : b;",
            (_, a) => System.Math.Max((int)a[0], (int)a[1]), r => [r.Next(-50, 50), r.Next(-50, 50)]),
        new("isMultiple", "conditional", 1, [N], CodeType.Bool, r => [r.Next(2, 9)],
            c => $"returns true when n is divisible by {c[0]}", c => $"return n % {c[0]} === 0;", c => $"return n % {c[0]} == 0;",
            (c, a) => (int)a[0] / c[0] * c[0] == (int)a[0], r => [r.Next(0, 1) == 0 ? r.Next(-10, 20) * r.Next(2, 9) : r.Next(-50, 100)]) { WideConstants = r => [r.Next(2, 999)] },
        new("label", "conditional", 1, [N], CodeType.Str, r => [r.Next(0, 999)],
            c => $"returns \"high\" when n is at least {c[0]} and \"low\" otherwise",
            c => $"return n >= {c[0]} ? \"high\" : \"low\";", c => $"return n >= {c[0]} ? \"high\" : \"low\";",
            (c, a) => (int)a[0] < c[0] ? "low" : "high", r => [r.Next(-10, 1010)]) { WideConstants = r => [r.Next(0, 99_999)] },
        new("sign", "conditional", 2, [N], CodeType.Int, _ => [],
            _ => "returns 1 when n is positive, -1 when n is negative and 0 when n is 0",
            _ => "if (n > 0) return 1;\nif (n < 0) return -1;\nreturn 0;", _ => "if (n > 0) return 1;\nif (n < 0) return -1;\nreturn 0;",
            (_, a) => System.Math.Sign((int)a[0]), r => [r.Next(-6, 6)]),
        new("clamp", "conditional", 2, [N], CodeType.Int, r => [r.Next(-99, 0), r.Next(1, 99)],
            c => $"returns {c[0]} when n is less than {c[0]}, {c[1]} when n is greater than {c[1]}, and n otherwise",
            c => $"if (n < {c[0]}) return {c[0]};\nif (n > {c[1]}) return {c[1]};\nreturn n;",
            c => $"if (n < {c[0]}) return {c[0]};\nif (n > {c[1]}) return {c[1]};\nreturn n;",
            (c, a) => System.Math.Clamp((int)a[0], c[0], c[1]), r => [r.Next(-120, 120)]) { WideConstants = r => [r.Next(-9_999, 0), r.Next(1, 9_999)] },
        new("fizzBuzz", "conditional", 3, [N], CodeType.Str, FizzConstants,
            c => $"returns \"FizzBuzz\" when n is divisible by both {c[0]} and {c[1]}, \"Fizz\" when only by {c[0]}, \"Buzz\" when only by {c[1]}, and n as a string otherwise",
            c => $"if (n % {c[0]} === 0 && n % {c[1]} === 0) return \"FizzBuzz\";\nif (n % {c[0]} === 0) return \"Fizz\";\nif (n % {c[1]} === 0) return \"Buzz\";\nreturn String(n);",
            c => $"if (n % {c[0]} == 0 && n % {c[1]} == 0) return \"FizzBuzz\";\nif (n % {c[0]} == 0) return \"Fizz\";\nif (n % {c[1]} == 0) return \"Buzz\";\nreturn n.ToString();",
            (c, a) => Fizz((int)a[0], c[0], c[1]), r => [r.Next(1, 60)]),
        new("diffOrSum", "conditional", 2, [A, B], CodeType.Int, _ => [],
            _ => "returns a - b when a is greater than b, and a + b otherwise",
            _ => "if (a > b) return a - b;\nreturn a + b;", _ => "if (a > b) return a - b;\nreturn a + b;",
            (_, a) => (int)a[0] <= (int)a[1] ? (int)a[0] + (int)a[1] : (int)a[0] - (int)a[1], r => [r.Next(-20, 20), r.Next(-20, 20)]),
        new("isBetween", "conditional", 1, [N], CodeType.Bool, IsBetweenConstants,
            c => $"returns true when n is between {c[0]} and {c[1]} (both included)",
            c => $"return n >= {c[0]} && n <= {c[1]};", c => $"return n >= {c[0]} && n <= {c[1]};",
            (c, a) => !((int)a[0] < c[0] || (int)a[0] > c[1]), r => [r.Next(-15, 35)]),
        new("parity", "conditional", 2, [N], CodeType.Str, _ => [],
            _ => "returns \"even\" when n is even and \"odd\" otherwise",
            _ => "return n % 2 === 0 ? \"even\" : \"odd\";", _ => "return n % 2 == 0 ? \"even\" : \"odd\";",
            (_, a) => ((int)a[0] & 1) == 0 ? "even" : "odd", r => [r.Next(-20, 50)]),
    ];

    private static string Text(SplitMix64 r, int min, int max) =>
        new(Enumerable.Range(0, r.Next(min, max)).Select(_ => Letters[r.Next(0, Letters.Length - 1)]).ToArray());

    /// <summary>Half palindromes (so both answers are tested), half random text.</summary>
    private static string Palindromish(SplitMix64 r)
    {
        var half = Text(r, 0, 4);
        return r.Next(0, 1) == 0 ? Text(r, 1, 7) : half + (r.Next(0, 1) == 0 ? "" : Letters[r.Next(0, 9)].ToString()) + new string(half.Reverse().ToArray());
    }

    private static int[] List(SplitMix64 r, int minLength, int maxLength, int lo, int hi) =>
        Enumerable.Range(0, r.Next(minLength, maxLength)).Select(_ => r.Next(lo, hi)).ToArray();

    private static int[] Ints(object value) => (int[])value;

    private static int[] FizzConstants(SplitMix64 r)
    {
        int a = r.Next(2, 5);
        return [a, r.Next(a + 1, 7)];
    }

    private static int[] IsBetweenConstants(SplitMix64 r)
    {
        int lo = r.Next(-10, 10);
        return [lo, lo + r.Next(2, 20)];
    }

    private static string Fizz(int n, int a, int b) => (n % a, n % b) switch
    {
        (0, 0) => "FizzBuzz",
        (0, _) => "Fizz",
        (_, 0) => "Buzz",
        _ => n.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
