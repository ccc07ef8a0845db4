// Turns DataRows into typed examples, checking every column: a missing column, a value of the wrong type,
// an empty messages list, an unknown role or a message without text raises a DataException naming the
// file, the row and the column.
namespace PostTrain.Data.Examples;

public sealed class ExampleParser(ColumnMap? columns = null)
{
    public ColumnMap Columns { get; } = columns ?? ColumnMap.Default;

    public TextExample Text(DataRow row) => new(String(row, Columns.Text)) { Source = row };

    public PromptCompletionExample PromptCompletion(DataRow row) =>
        new(String(row, Columns.Prompt), String(row, Columns.Completion)) { Source = row };

    public ChatExample Chat(DataRow row) => new(Messages(row, Columns.Messages, row[Columns.Messages])) { Source = row };

    /// <summary>prompt/chosen/rejected as strings or message lists. When the prompt column is absent and
    /// chosen/rejected are message lists, the prompt is their longest common prefix of messages (TRL's
    /// "implicit prompt").</summary>
    public PreferenceExample Preference(DataRow row)
    {
        var chosenValue = Required(row, Columns.Chosen);
        var rejectedValue = Required(row, Columns.Rejected);
        var conversational = chosenValue is not string;
        if ((rejectedValue is string) == conversational)
            throw DataException.ForRow(row, Columns.Rejected,
                $"'{Columns.Chosen}' and '{Columns.Rejected}' must both be strings or both be message lists");

        if (!conversational)
        {
            var prompt = String(row, Columns.Prompt);
            return new PreferenceExample([ChatMessage.User(prompt)], [ChatMessage.Assistant((string)chosenValue)],
                [ChatMessage.Assistant((string)rejectedValue)], IsConversational: false) { Source = row };
        }

        var chosen = Messages(row, Columns.Chosen, chosenValue);
        var rejected = Messages(row, Columns.Rejected, rejectedValue);
        if (row.Has(Columns.Prompt))
        {
            var promptValue = row[Columns.Prompt];
            IReadOnlyList<ChatMessage> prompt = promptValue is string s ? [ChatMessage.User(s)] : Messages(row, Columns.Prompt, promptValue);
            return new PreferenceExample(prompt, chosen, rejected, IsConversational: true) { Source = row };
        }
        var shared = 0;
        while (shared < chosen.Count - 1 && shared < rejected.Count - 1 && chosen[shared] == rejected[shared]) shared++;
        return new PreferenceExample([.. chosen.Take(shared)], [.. chosen.Skip(shared)], [.. rejected.Skip(shared)],
            IsConversational: true) { Source = row };
    }

    private static object Required(DataRow row, string column)
    {
        if (!row.Columns.TryGetValue(column, out var value))
            throw DataException.ForRow(row, column, $"missing column (row has: {string.Join(", ", row.Columns.Keys)})");
        return value ?? throw DataException.ForRow(row, column, "value is null");
    }

    private static string String(DataRow row, string column) => Required(row, column) switch
    {
        string s => s,
        var other => throw DataException.ForRow(row, column, $"expected a string, got {Describe(other)}"),
    };

    private IReadOnlyList<ChatMessage> Messages(DataRow row, string column, object? value)
    {
        if (value is null) _ = Required(row, column);
        if (value is string || value is not IReadOnlyList<object?> list)
            throw DataException.ForRow(row, column, $"expected a list of {{{Columns.Role}, {Columns.Content}}} messages, got {Describe(value)}");
        if (list.Count == 0) throw DataException.ForRow(row, column, "empty messages list");

        var messages = new ChatMessage[list.Count];
        for (var i = 0; i < list.Count; i++)
        {
            if (list[i] is not IReadOnlyDictionary<string, object?> m)
                throw DataException.ForRow(row, column, $"message {i + 1}: expected an object with '{Columns.Role}' and '{Columns.Content}', got {Describe(list[i])}");
            if (!m.TryGetValue(Columns.Role, out var roleValue) || roleValue is not string roleName)
                throw DataException.ForRow(row, column, $"message {i + 1}: missing or non-string '{Columns.Role}'");
            var role = ChatMessage.ParseRole(roleName)
                ?? throw DataException.ForRow(row, column, $"message {i + 1}: unknown role '{roleName}' (expected system, user or assistant)");
            if (!m.TryGetValue(Columns.Content, out var contentValue) || contentValue is not string content)
                throw DataException.ForRow(row, column, $"message {i + 1}: missing or non-string '{Columns.Content}'");
            messages[i] = new ChatMessage(role, content);
        }
        return messages;
    }

    private static string Describe(object? value) => value switch
    {
        null => "null",
        string => "a string",
        IReadOnlyDictionary<string, object?> => "an object",
        IReadOnlyList<object?> l => $"a list of {l.Count}",
        _ => $"{value.GetType().Name} {value}",
    };
}
