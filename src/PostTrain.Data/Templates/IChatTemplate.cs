// Renders conversations to token ids with a train mask (for SFT) and prompts to ids (for generation).
using PostTrain.Data.Examples;

namespace PostTrain.Data.Templates;

public interface IChatTemplate
{
    /// <summary>The conversation's ids; the mask is true on assistant content and its end-of-sentence token.</summary>
    TokenizedExample Render(ChatExample example);

    /// <summary>The prompt as a user turn and the completion as the assistant's; only the completion is trained.</summary>
    TokenizedExample Render(PromptCompletionExample example);

    /// <summary>The messages followed by the generation prefix (e.g. "&lt;｜Assistant｜&gt;"), for sampling.</summary>
    int[] RenderPrompt(IReadOnlyList<ChatMessage> messages);
}
