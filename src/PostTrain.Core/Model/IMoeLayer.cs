// What the rest of the code needs from a DeepSeekMoE layer, whether it holds every routed expert (MoE) or this rank's
// slice of them (Distributed.ExpertParallelMoE): the router (routing bias, replay), the per-expert token counts for the
// aux-loss-free balancer (real tokens only: TokenMask), and the optional sequence-wise balance loss.
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

public interface IMoeLayer
{
    Router Gate { get; }

    /// <summary>Returns and resets the per-expert token counts (all n_routed_experts, from this process's tokens)
    /// accumulated since the last call.</summary>
    long[] TakeLoads();

    /// <summary>(B*T) bool, set by the model around a forward with a padding or segment mask: the tokens that count in
    /// the loads (padding is routed like any token but is not load the balancer should see). Null: every token counts.</summary>
    Tensor? TokenMask { get; set; }

    /// <summary>Sequence-wise balance loss weight alpha (0 = off).</summary>
    double BalanceAlpha { get; set; }

    /// <summary>Sequence-wise balance loss of the last forward when <see cref="BalanceAlpha"/> > 0, else null. Owned by
    /// the layer (outside every dispose scope, so it outlives the forward's scopes) and replaced by the next forward.</summary>
    Tensor? LastBalanceLoss { get; }
}
