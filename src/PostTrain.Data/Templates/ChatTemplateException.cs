// A chat template that cannot be chosen, loaded or rendered: an unknown name under a config key, a model
// directory without a template, a malformed .jinja file, or a template that raised (raise_exception) while
// rendering. The message names the key or file at fault.
namespace PostTrain.Data.Templates;

public sealed class ChatTemplateException(string message, Exception? inner = null) : Exception(message, inner);
