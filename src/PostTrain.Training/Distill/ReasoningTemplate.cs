// How a problem becomes the teacher's conversation: an optional system prompt (the think format's default asks for
// reasoning inside <think>...</think> then the final answer, as DeepSeek-R1's training template) and the user turn
// from prompt_template with {prompt} replaced. Also where, in a completion, the final answer sits.
using PostTrain.Data.Examples;
using PostTrain.Rewards;

namespace PostTrain.Training.Distill;

public sealed class ReasoningTemplate
{
    public const string DefaultThinkSystemPrompt =
        "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. " +
        "The Assistant first thinks about the reasoning process step by step and then gives the user the answer. " +
        "The reasoning process is enclosed within <think> </think> tags, followed by the final answer, i.e., " +
        "<think> reasoning process here </think> final answer here. Put the final answer within \\boxed{}.";

    public ReasoningFormat Format { get; }
    public string? SystemPrompt { get; }
    public string PromptTemplate { get; }

    public ReasoningTemplate(ReasoningFormat format, string? systemPrompt, string promptTemplate)
    {
        if (!promptTemplate.Contains("{prompt}"))
            throw new RecipeConfigException($"sampling.prompt_template: must contain the {{prompt}} placeholder (got '{promptTemplate}')");
        Format = format;
        SystemPrompt = systemPrompt ?? (format == ReasoningFormat.Think ? DefaultThinkSystemPrompt : null);
        if (SystemPrompt == "") SystemPrompt = null;
        PromptTemplate = promptTemplate;
    }

    public static ReasoningTemplate From(DistillSamplingConfig s) => new(s.ReasoningFormat, s.SystemPrompt, s.PromptTemplate);

    public string UserTurn(string prompt) => PromptTemplate.Replace("{prompt}", prompt, StringComparison.Ordinal);

    public IReadOnlyList<ChatMessage> Messages(string prompt) =>
        SystemPrompt is null ? [ChatMessage.User(UserTurn(prompt))] : [ChatMessage.System(SystemPrompt), ChatMessage.User(UserTurn(prompt))];

    /// <summary>The final answer: after &lt;/think&gt; for the think format (empty when the reasoning never closed), the
    /// whole completion otherwise.</summary>
    public string Answer(string completion) => Format == ReasoningFormat.Think
        ? (completion.Contains(CompletionParts.DefaultClose, StringComparison.Ordinal) ? CompletionParts.Split("", completion).Answer : "")
        : completion;

    /// <summary>The reasoning the language filter reads: inside the think tags, or the whole completion.</summary>
    public string Reasoning(string completion) =>
        Format == ReasoningFormat.Think ? CompletionParts.Split("", completion).Reasoning ?? completion : completion;
}
