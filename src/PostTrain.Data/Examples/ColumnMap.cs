// Which dataset columns hold which field, so datasets with other names (e.g. prompt = "question",
// completion = "solution") need no conversion. Defaults follow TRL / Hugging Face datasets.
namespace PostTrain.Data.Examples;

public sealed record ColumnMap
{
    public static ColumnMap Default { get; } = new();

    public string Text { get; init; } = "text";
    public string Prompt { get; init; } = "prompt";
    public string Completion { get; init; } = "completion";
    public string Messages { get; init; } = "messages";
    public string Chosen { get; init; } = "chosen";
    public string Rejected { get; init; } = "rejected";

    /// <summary>Key of a message's role inside a messages list.</summary>
    public string Role { get; init; } = "role";

    /// <summary>Key of a message's text inside a messages list.</summary>
    public string Content { get; init; } = "content";
}
