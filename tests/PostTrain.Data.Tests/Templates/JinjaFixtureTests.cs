// Templates of our own (Fixtures/jinja/templates) that exercise the interpreter beyond the real models' templates:
// macros (defaults, kwargs, varargs, caller, recursion), namespace and loop variables, recursive loops, filters,
// slicing, string methods, operators, Python value printing, whitespace control, raw/set/with/filter blocks,
// tests and the errors templates raise. expected.jsonl was made by transformers' render_jinja_template on the GPU
// machine (render_expected.py); the {% generation %} spans are transformers' too.
using PostTrain.Data.Templates.Jinja;

namespace PostTrain.Data.Tests.Templates;

public sealed class JinjaFixtureTests
{
    private static readonly string Root = Path.Combine(AppContext.BaseDirectory, "Fixtures", "jinja");

    [Fact]
    public void Own_templates_render_as_transformers_did()
    {
        var cases = ((List<object?>)PyJsonReader.Parse(File.ReadAllText(Path.Combine(Root, "cases.json")))!).Cast<PyDict>().ToList();
        var expected = File.ReadLines(Path.Combine(Root, "expected.jsonl")).Where(l => l.Length > 0)
            .Select(l => (PyDict)PyJsonReader.Parse(l)!).ToDictionary(r => (string)r["id"]!);
        Assert.Equal(cases.Count, expected.Count);
        var failures = new List<string>();
        foreach (var c in cases)
        {
            var id = (string)c["id"]!;
            var want = expected[id];
            var vars = new Dictionary<string, object?>
            {
                ["messages"] = c["messages"], ["tools"] = null, ["documents"] = null, ["add_generation_prompt"] = c["add_generation_prompt"],
                ["bos_token"] = "<s>", ["eos_token"] = "</s>",
            };
            foreach (var (k, v) in (PyDict)c["kwargs"]!) vars[(string)k] = v;
            var source = File.ReadAllText(Path.Combine(Root, "templates", (string)c["template"]! + ".jinja"));
            try
            {
                var r = JinjaTemplate.Parse(source).Render(vars);
                if (want.ContainsKey("error_type")) failures.Add($"{id}: expected {want["error_type"]}, rendered");
                else if (r.Text != (string)want["expected"]!)
                {
                    var e = (string)want["expected"]!;
                    int i = 0;
                    while (i < r.Text.Length && i < e.Length && r.Text[i] == e[i]) i++;
                    failures.Add($"{id}: differs at {i}: got {Show(r.Text, i)} want {Show(e, i)}");
                }
                else if (want.TryGetValue("generation", out var g) && g is List<object?> spans && spans.Count > 0)
                {
                    var wantSpans = spans.Cast<List<object?>>().Select(s => ((int)(long)s[0]!, (int)(long)s[1]!)).ToList();
                    // Python counts code points, .NET strings UTF-16 units: compare in code points
                    var got = r.GenerationSpans.Select(x => ((int)PyStr.CodePointCount(r.Text[..x.Start]), (int)PyStr.CodePointCount(r.Text[..x.End]))).ToList();
                    if (!wantSpans.SequenceEqual(got)) failures.Add($"{id}: generation spans {string.Join(",", got)} want {string.Join(",", wantSpans)}");
                }
            }
            catch (JinjaException ex)
            {
                if (!want.ContainsKey("error_type")) failures.Add($"{id}: raised {ex.Kind}: {ex.Message}");
                else if (Kind((string)want["error_type"]!) != ex.Kind) failures.Add($"{id}: raised {ex.Kind}, transformers raised {want["error_type"]}");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    private static string Kind(string pythonType) => pythonType switch
    {
        "jinja2.exceptions.TemplateError" => "raise_exception",
        "jinja2.exceptions.UndefinedError" => "undefined_error",
        "jinja2.exceptions.SecurityError" => "security_error",
        "builtins.TypeError" => "type_error",
        _ => pythonType,
    };

    private static string Show(string s, int at) =>
        System.Text.Json.JsonSerializer.Serialize(s.Substring(Math.Max(0, at - 25), Math.Min(s.Length, at + 40) - Math.Max(0, at - 25)));
}
