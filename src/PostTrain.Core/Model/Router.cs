// DeepSeekMoE router. logits = x W^T in fp32; scores = sigmoid (V3) or softmax (V2). Expert selection adds
// e_score_correction_bias (selection only). With n_group > 1, groups are scored (V3: sum of the group's top-2 biased
// scores; V2: the group's max), the best topk_group groups are kept and the rest masked to -inf; then the top
// num_experts_per_tok experts are chosen. Weights = unbiased scores at the chosen experts, divided by their sum when
// norm_topk_prob (+1e-20), times routed_scaling_factor.
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

public sealed class Router : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;                 // (E, H)
    private readonly Tensor? e_score_correction_bias;  // (E) buffer, fp32: moved by the aux-loss-free balancer (V3 only)
    private readonly ModelConfig c;

    public Router(ModelConfig config, Device? device = null) : base(nameof(Router))
    {
        c = config;
        weight = nn.Parameter(empty(c.NRoutedExperts, c.HiddenSize, device: device));
        if (c.UseCorrectionBias) e_score_correction_bias = zeros(c.NRoutedExperts, device: device);
        RegisterComponents();
    }

    public Parameter Weight => weight;
    /// <summary>The correction bias (a persistent buffer for V3; unused and not saved for V2-style routing).</summary>
    public Tensor? CorrectionBias => e_score_correction_bias;

    /// <summary>Optional extra mask on the biased selection scores (N, E) before the top-k, e.g. device-limited routing
    /// under expert parallelism (Distributed.DeviceLimitedRouting); returns the masked scores.</summary>
    public Func<Tensor, Tensor>? SelectionFilter { get; set; }

    public override Tensor forward(Tensor x) => throw new InvalidOperationException("call Route(x)");

    /// <summary>x (N, H) -> expert indices (N, k) int64, weights (N, k) fp32, scores (N, E) fp32.</summary>
    public (Tensor Indices, Tensor Weights, Tensor Scores) Route(Tensor x)
    {
        using var scope = NewDisposeScope();
        var logits = nn.functional.linear(x.to(ScalarType.Float32), weight.to(ScalarType.Float32)); // (N, E)
        var scores = c.ScoringFunc == "sigmoid" ? logits.sigmoid() : logits.softmax(-1);
        Tensor choice;
        using (no_grad())
        {
            choice = c.UseCorrectionBias ? scores + e_score_correction_bias!.to(scores.device) : scores.clone();
            if (c.NGroup > 1)
            {
                long n = choice.shape[0], perGroup = c.NRoutedExperts / c.NGroup;
                var grouped = choice.view(n, c.NGroup, perGroup);                     // (N, G, E/G)
                var groupScores = c.UseCorrectionBias
                    ? grouped.topk(2, dim: -1).values.sum(-1)                          // (N, G)
                    : grouped.max(-1).values;
                var groupIdx = groupScores.topk(c.TopkGroup, dim: -1, sorted: false).indexes; // (N, topk_group)
                var groupMask = zeros_like(groupScores).scatter_(1, groupIdx, ones_like(groupIdx, dtype: groupScores.dtype));
                var scoreMask = groupMask.unsqueeze(-1).expand(n, c.NGroup, perGroup).reshape(n, c.NRoutedExperts);
                choice = choice.masked_fill(scoreMask.logical_not(), double.NegativeInfinity);
            }
            if (SelectionFilter is not null) choice = SelectionFilter(choice);
        }
        var idx = choice.topk(c.NumExpertsPerTok, dim: -1, sorted: false).indexes;  // (N, k)
        var w = scores.gather(1, idx);                                               // (N, k)
        if (c.NormTopkProb) w = w / (w.sum(-1, keepdim: true) + 1e-20);
        w = w * c.RoutedScalingFactor;
        return (idx.MoveToOuterDisposeScope(), w.MoveToOuterDisposeScope(), scores.MoveToOuterDisposeScope());
    }
}
