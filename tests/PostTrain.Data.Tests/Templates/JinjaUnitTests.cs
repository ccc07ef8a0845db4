// Small hand-checked behaviours of the Jinja interpreter not covered by the transformers-made fixtures
// (the expected strings are what CPython/jinja2 print for the same expressions).
using PostTrain.Data.Templates.Jinja;

namespace PostTrain.Data.Tests.Templates;

public sealed class JinjaUnitTests
{
    private static string R(string template, Dictionary<string, object?>? vars = null) => JinjaTemplate.Parse(template).Render(vars ?? []).Text;

    [Theory]
    [InlineData("{{ '%s-%d' % ('a', 3) }}", "a-3")]
    [InlineData("{{ 'x=%s' % 5 }}", "x=5")]
    [InlineData("{{ '%r' % 'q' }}", "'q'")]
    [InlineData("{{ {'a': {'b': 1}}['a'] }}", "{'b': 1}")]
    [InlineData("{{ 1e100 }} {{ 1.0 / 3 }}", "1e+100 0.3333333333333333")]
    [InlineData("{{ 'a\\u00e9\\x41\\n' }}", "aéA\n")]
    public void Python_semantics(string template, string expected) => Assert.Equal(expected, R(template));

    [Fact]
    public void Errors_have_kinds_and_lines()
    {
        var e = Assert.Throws<JinjaException>(() => R("ok\n{{ x.y }}"));
        Assert.Equal(("undefined_error", 2), (e.Kind, e.Line));
        e = Assert.Throws<JinjaException>(() => R("{% for x in y %}"));
        Assert.Equal("syntax_error", e.Kind);
        e = Assert.Throws<JinjaException>(() => R("{{ [1].append(2) }}"));
        Assert.Equal("security_error", e.Kind);
    }
}
