// Runs libtorch's CPU ops on one intra-op thread for this whole test assembly. On the shared 2-core build
// machine OpenMP's thread pool oversubscribes badly: the 200-step FP8-vs-BF16 training test took 43 s with
// the default pool and 1.5 s with one thread, with identical results.
using System.Runtime.CompilerServices;

namespace PostTrain.Core.Tests.Precision;

internal static class TorchThreads
{
    [ModuleInitializer]
    internal static void UseOneThread() => TorchSharp.torch.set_num_threads(1);
}
