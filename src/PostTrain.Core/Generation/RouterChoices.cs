// While routing is recorded, every MoE router of the model keeps its own choice of each call (Router.LastChoice), which
// the cached model copies into the KV cache's expert columns; disposing restores the routers.
using PostTrain.Core.Model;

namespace PostTrain.Core.Generation;

internal sealed class RouterChoices : IDisposable
{
    private readonly Router[] routers;

    public RouterChoices(DeepSeekForCausalLM model)
    {
        routers = model.MoeLayers().Select(m => m.Gate).ToArray();
        foreach (var r in routers) r.KeepLastChoice = true;
    }

    public void Dispose()
    {
        foreach (var r in routers) r.ClearLastChoice();
    }
}
