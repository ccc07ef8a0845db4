// Bad eval input (unknown task, malformed task file, settings that differ from a resumed run's): the message names the
// file, key or row at fault. The CLI prints it as a usage error.
namespace PostTrain.Eval;

public sealed class EvalConfigException(string message) : Exception(message);
