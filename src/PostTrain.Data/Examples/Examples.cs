// The typed examples a dataset row becomes, one per supported format. Each keeps the DataRow it came from
// (Source) so trainers and rewards can read the row's other columns (e.g. "answer").
namespace PostTrain.Data.Examples;

/// <summary>Plain text (pre-training style): every token is trained.</summary>
public sealed record TextExample(string Text)
{
    public DataRow? Source { get; init; }
}

/// <summary>A prompt and its completion (plain strings): only the completion is trained.</summary>
public sealed record PromptCompletionExample(string Prompt, string Completion)
{
    public DataRow? Source { get; init; }

    /// <summary>The same example as a conversation: the prompt as a user turn, the completion as the assistant's.</summary>
    public ChatExample ToChat() => new([ChatMessage.User(Prompt), ChatMessage.Assistant(Completion)]) { Source = Source };
}

/// <summary>A conversation: assistant turns are trained.</summary>
public sealed record ChatExample(IReadOnlyList<ChatMessage> Messages)
{
    public DataRow? Source { get; init; }
}

/// <summary>A preference pair. String columns become one-message lists (prompt: user, chosen/rejected:
/// assistant) and <see cref="IsConversational"/> is false; message-list columns stay as they are.</summary>
public sealed record PreferenceExample(
    IReadOnlyList<ChatMessage> Prompt,
    IReadOnlyList<ChatMessage> Chosen,
    IReadOnlyList<ChatMessage> Rejected,
    bool IsConversational)
{
    public DataRow? Source { get; init; }

    public ChatExample ChosenChat => new([.. Prompt, .. Chosen]) { Source = Source };
    public ChatExample RejectedChat => new([.. Prompt, .. Rejected]) { Source = Source };
}
