// Aux-loss-free load balancing (DeepSeek-V3): after each optimizer step, every MoE layer's correction bias moves by
// gamma towards balance: b_i -= gamma if expert i got more than the mean load, += gamma if less (unchanged at the
// mean). gamma = 0 freezes the biases. Also reports the max/mean load ratio per layer for logging.
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

public static class MoeBalancer
{
    /// <summary>Updates every layer's bias from the loads accumulated since the last call and returns max/mean load
    /// per MoE layer (1.0 = perfectly balanced). Layers without a correction bias (V2 routing) only report.</summary>
    /// <param name="group">Ranks whose loads are summed first (data/expert parallel: the global counts), or null.</param>
    public static double[] Step(DeepSeekForCausalLM model, double gamma, PostTrain.Core.Distributed.ProcessGroup? group = null)
    {
        var ratios = new List<double>();
        using var _ = no_grad();
        foreach (var moe in model.MoeLayers())
        {
            long[] loads = group is null ? moe.TakeLoads() : group.AllReduce(moe.TakeLoads());
            double mean = loads.Average();
            ratios.Add(mean > 0 ? loads.Max() / mean : 1.0);
            if (gamma == 0 || mean == 0 || moe.Gate.CorrectionBias is not { } bias) continue;
            var delta = new float[loads.Length];
            for (int i = 0; i < loads.Length; i++) delta[i] = (float)(gamma * -Math.Sign(loads[i] - mean));
            bias.add_(tensor(delta, device: bias.device));
        }
        return ratios.ToArray();
    }
}
