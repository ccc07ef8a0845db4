// The 205 cases of ../shared/chat-templates (20 real models' templates; expected text made by transformers):
// every rendering must equal transformers' byte for byte, and the 8 expected errors must raise.
using PostTrain.Data.Templates.Jinja;

namespace PostTrain.Data.Tests.Templates;

public sealed class RealChatTemplateTests
{
    private static JinjaRender Render(ChatTemplateCase c)
    {
        var vars = new Dictionary<string, object?>
        {
            ["messages"] = c.Messages, ["tools"] = c.Tools, ["documents"] = c.Documents, ["add_generation_prompt"] = c.AddGenerationPrompt,
        };
        foreach (var (k, v) in c.SpecialTokens) vars[(string)k] = v;
        foreach (var (k, v) in c.Extra) vars[(string)k] = v;
        return JinjaTemplate.Parse(c.Template).Render(vars, () => c.Now);
    }

    [Fact]
    public void Every_case_renders_exactly_as_transformers_or_raises()
    {
        var cases = SharedChatTemplates.Cases();
        Assert.Equal(205, cases.Count);
        Assert.Equal(8, cases.Count(c => c.ExpectError));
        var failures = new List<string>();
        foreach (var c in cases)
        {
            try
            {
                var text = Render(c).Text;
                if (c.ExpectError) failures.Add($"{c.Id}: expected a {c.ErrorKind} error, rendered {text.Length} chars");
                else if (text != c.Expected)
                {
                    int i = 0;
                    while (i < text.Length && i < c.Expected!.Length && text[i] == c.Expected[i]) i++;
                    failures.Add($"{c.Id}: differs at char {i}: got {Show(text, i)} expected {Show(c.Expected!, i)}");
                }
            }
            catch (JinjaException e)
            {
                if (!c.ExpectError) failures.Add($"{c.Id}: raised {e.Kind}: {e.Message}");
                else if (c.ErrorKind is "raise_exception" or "type_error" && e.Kind != c.ErrorKind) failures.Add($"{c.Id}: raised {e.Kind}, expected {c.ErrorKind}");
            }
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {cases.Count} cases fail:\n" + string.Join("\n", failures));
    }

    private static string Show(string s, int at) =>
        System.Text.Json.JsonSerializer.Serialize(s.Substring(Math.Max(0, at - 20), Math.Min(s.Length, at + 40) - Math.Max(0, at - 20)));
}
