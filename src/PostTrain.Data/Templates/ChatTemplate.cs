// A chat template built from a ChatTemplateSpec. Each part (a prefix, a message's content, a suffix) is
// encoded separately and concatenated, so the train mask is exact at part boundaries. For templates whose
// parts are joined by special tokens (DeepSeek-V3) this equals encoding the whole rendered string, because
// tokenizers split on special tokens first; with plain-text markers (e.g. "User: ") BPE merges across a
// boundary can differ from whole-string encoding.
using PostTrain.Data.Examples;
using PostTrain.Data.Tokenizers;

namespace PostTrain.Data.Templates;

public sealed class ChatTemplate(ITokenizer tokenizer, ChatTemplateSpec spec) : IChatTemplate
{
    public ITokenizer Tokenizer { get; } = tokenizer;
    public ChatTemplateSpec Spec { get; } = spec;

    public static ChatTemplate DeepSeekV3(ITokenizer tokenizer) => new(tokenizer, ChatTemplateSpec.DeepSeekV3);

    public TokenizedExample Render(ChatExample example)
    {
        var builder = new Builder(Tokenizer);
        AppendConversation(builder, example.Messages);
        return builder.Build();
    }

    public TokenizedExample Render(PromptCompletionExample example) => Render(example.ToChat());

    public int[] RenderPrompt(IReadOnlyList<ChatMessage> messages)
    {
        var builder = new Builder(Tokenizer);
        AppendConversation(builder, messages);
        builder.Add(Spec.GenerationPrefix ?? Spec.AssistantPrefix, trained: false);
        return builder.Build().InputIds;
    }

    private void AppendConversation(Builder builder, IReadOnlyList<ChatMessage> messages)
    {
        builder.Add(Spec.Bos, trained: false);
        var system = messages.Where(m => m.Role == ChatRole.System).Select(m => m.Content).ToList();
        if (system.Count > 0)
        {
            builder.Add(Spec.SystemPrefix, trained: false);
            builder.Add(string.Join(Spec.SystemSeparator, system), trained: false);
            builder.Add(Spec.SystemSuffix, trained: false);
        }
        foreach (var m in messages)
        {
            switch (m.Role)
            {
                case ChatRole.User:
                    builder.Add(Spec.UserPrefix, trained: false);
                    builder.Add(m.Content, trained: false);
                    builder.Add(Spec.UserSuffix, trained: false);
                    break;
                case ChatRole.Assistant:
                    builder.Add(Spec.AssistantPrefix, trained: false);
                    builder.Add(m.Content, trained: true);
                    builder.Add(Spec.Eos, trained: true);
                    builder.Add(Spec.AssistantSuffix, trained: false);
                    break;
            }
        }
    }

    private sealed class Builder(ITokenizer tokenizer)
    {
        private readonly List<int> _ids = [];
        private readonly List<bool> _mask = [];

        public void Add(string text, bool trained)
        {
            if (text.Length == 0) return;
            var ids = tokenizer.Encode(text);
            _ids.AddRange(ids);
            for (var i = 0; i < ids.Length; i++) _mask.Add(trained);
        }

        public TokenizedExample Build() => new([.. _ids], [.. _mask]);
    }
}
