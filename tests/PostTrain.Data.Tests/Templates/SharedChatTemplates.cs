// Locates ../shared/chat-templates beside the checkout (the repository root is the folder holding
// PostTrain.sln, found by walking up from the test assembly) and reads its cases. The data is not copied into
// the repository; CI has ../shared next to the checkout.
using System.Text.Json;
using PostTrain.Data.Templates.Jinja;

namespace PostTrain.Data.Tests.Templates;

internal sealed record ChatTemplateCase(string Id, string TemplateId, string Template, PyDict SpecialTokens, object? Messages,
    object? Tools, object? Documents, bool AddGenerationPrompt, PyDict Extra, DateTime Now, string? Expected, bool ExpectError, string? ErrorKind);

internal static class SharedChatTemplates
{
    public static string Dir()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "PostTrain.sln"))) dir = dir.Parent;
        if (dir is null) throw new InvalidOperationException($"no PostTrain.sln above {AppContext.BaseDirectory}");
        var data = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "chat-templates"));
        if (!File.Exists(Path.Combine(data, "cases.jsonl")))
            throw new InvalidOperationException($"the chat-template test data is missing: expected {data}/cases.jsonl " +
                "(../shared/chat-templates beside the repository checkout, as CI provides it)");
        return data;
    }

    public static List<ChatTemplateCase> Cases()
    {
        var list = new List<ChatTemplateCase>();
        foreach (var line in File.ReadLines(Path.Combine(Dir(), "cases.jsonl")))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            var c = (PyDict)PyJsonReader.Parse(line)!;
            list.Add(new ChatTemplateCase((string)c["id"]!, (string)c["template_id"]!, (string)c["template"]!,
                c["special_tokens"] as PyDict ?? new PyDict(), c["messages"], c["tools"], c["documents"], c["add_generation_prompt"] is true,
                c["extra"] as PyDict ?? new PyDict(), DateTime.Parse((string)c["now"]!, System.Globalization.CultureInfo.InvariantCulture),
                c["expected"] as string, c["expect_error"] is true, c.TryGetValue("error_kind", out var k) ? k as string : null));
        }
        return list;
    }
}
