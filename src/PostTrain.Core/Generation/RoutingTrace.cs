// The experts each token was routed to during generation, per MoE layer, for routing replay (R3) in training: positions
// 0..Positions-1 are the sequence's input tokens in order (the prompt, then every completion token but the last, which
// is never fed). Experts[(layer * Positions + position) * TopK + j]; layers are the model's MoE layers in order.
namespace PostTrain.Core.Generation;

public sealed record RoutingTrace(int MoeLayers, int TopK, int Positions, short[] Experts)
{
    public short Expert(int layer, int position, int j) => Experts[(layer * Positions + position) * TopK + j];
}
