// DeepSeekMoE router. logits = x W^T in fp32; scores = sigmoid (V3) or softmax (V2). Expert selection adds
// e_score_correction_bias (selection only). With n_group > 1, groups are scored (V3: sum of the group's top-2 biased
// scores; V2: the group's max), the best topk_group groups are kept and the rest masked to -inf; then the top
// num_experts_per_tok experts are chosen. Weights = unbiased scores at the chosen experts, divided by their sum when
// norm_topk_prob (+1e-20), times routed_scaling_factor.
// Routing replay (R3): with ReplayExperts set, the given experts are used instead of the router's choice (a row of -1
// keeps the router's own), with the gate weights recomputed from the current scores at those experts, so the router
// still receives gradients. LastChoice keeps the router's own choice of the last call (for recording and for
// measuring how often replayed and own choices differ). Inside a recompute region (RecomputeTape) the first pass's
// experts are kept and the replay in backward uses them without choosing again (nor touching LastChoice).
using PostTrain.Core.Recompute;
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
    public int TopK => c.NumExpertsPerTok;
    /// <summary>The correction bias (a persistent buffer for V3; unused and not saved for V2-style routing).</summary>
    public Tensor? CorrectionBias => e_score_correction_bias;

    /// <summary>Optional extra mask on the biased selection scores (N, E) before the top-k, e.g. device-limited routing
    /// under expert parallelism (Distributed.DeviceLimitedRouting); returns the masked scores.</summary>
    public Func<Tensor, Tensor>? SelectionFilter { get; set; }

    public override Tensor forward(Tensor x) => throw new InvalidOperationException("call Route(x)");

    /// <summary>Experts to use for the next Route calls' N tokens, (N, k) int64; a row of -1 keeps the router's choice.
    /// Null = choose as usual.</summary>
    public Tensor? ReplayExperts { get; set; }

    /// <summary>Keep the router's own choice of each call in <see cref="LastChoice"/>.</summary>
    public bool KeepLastChoice { get; set; }

    /// <summary>The experts the router itself chose in the last Route call, (N, k) int64 (kept when
    /// <see cref="KeepLastChoice"/> or a replay is set; the previous one is disposed).</summary>
    public Tensor? LastChoice { get; private set; }

    /// <summary>Disposes <see cref="LastChoice"/> and stops keeping it.</summary>
    public void ClearLastChoice()
    {
        LastChoice?.Dispose();
        LastChoice = null;
        KeepLastChoice = false;
    }

    /// <summary>x (N, H) -> expert indices (N, k) int64, weights (N, k) fp32, scores (N, E) fp32. Inside a recompute
    /// region's replay the experts are the ones the first pass chose (RecomputeTape), not chosen again.</summary>
    public (Tensor Indices, Tensor Weights, Tensor Scores) Route(Tensor x)
    {
        using var scope = NewDisposeScope();
        var logits = RouterLogits.Apply(x, weight);                                  // (N, E) fp32, saves x as it is
        // Decode and other no-grad forwards on CUDA: one fused kernel from the logits (Kernels.DecodeKernels), for V3
        // routing without a selection filter, replay or recompute tape.
        if (!is_grad_enabled() && ReplayExperts is null && RecomputeTape.Current is null && SelectKernel(logits) is { } fused)
        {
            var (fi, fw, fs) = fused.RouterSelect(logits, e_score_correction_bias?.to(ScalarType.Float32, logits.device), c.NGroup, c.TopkGroup,
                c.NumExpertsPerTok, c.NormTopkProb, c.RoutedScalingFactor);
            if (KeepLastChoice)
            {
                LastChoice?.Dispose();
                LastChoice = fi.clone().DetachFromDisposeScope();
            }
            return (fi.MoveToOuterDisposeScope(), fw.MoveToOuterDisposeScope(), fs.MoveToOuterDisposeScope());
        }
        var scores = c.ScoringFunc == "sigmoid" ? logits.sigmoid() : logits.softmax(-1);
        var idx = RecomputeTape.Current is { } tape ? tape.Keep(() => Select(scores, logits)) : Select(scores, logits);   // (N, k)
        var w = GateWeights(scores, idx, c.NormTopkProb, c.RoutedScalingFactor);     // (N, k)
        return (idx.MoveToOuterDisposeScope(), w.MoveToOuterDisposeScope(), scores.MoveToOuterDisposeScope());
    }

    /// <summary>The gate weights of the chosen experts: scores there, divided by their sum (+1e-20) when normalising,
    /// times the scaling factor.</summary>
    public static Tensor GateWeights(Tensor scores, Tensor idx, bool normalize, double scaling)
    {
        var w = scores.gather(1, idx);                                               // (N, k)
        if (normalize) w = w / (w.sum(-1, keepdim: true) + 1e-20);
        return w * scaling;
    }

    /// <summary>The top-k experts of each row of <paramref name="scores"/> (N, E): the correction bias added for the
    /// selection, the best <paramref name="topkGroup"/> of <paramref name="groups"/> groups kept (V3, with a bias: a group
    /// scores the sum of its top-2; otherwise its max), then <paramref name="filter"/>, then top-k. (N, k) int64.</summary>
    public static Tensor ChooseExperts(Tensor scores, Tensor? bias, int groups, int topkGroup, int k, Func<Tensor, Tensor>? filter = null)
    {
        using var scope = NewDisposeScope();
        Tensor choice;
        using (no_grad())
        {
            choice = bias is not null ? scores + bias.to(scores.device) : scores.clone();
            if (groups > 1)
            {
                long n = choice.shape[0], experts = choice.shape[1], perGroup = experts / groups;
                var grouped = choice.view(n, groups, perGroup);                        // (N, G, E/G)
                var groupScores = bias is not null
                    ? grouped.topk(2, dim: -1).values.sum(-1)                          // (N, G)
                    : grouped.max(-1).values;
                var groupIdx = groupScores.topk(topkGroup, dim: -1, sorted: false).indexes; // (N, topk_group)
                var groupMask = zeros_like(groupScores).scatter_(1, groupIdx, ones_like(groupIdx, dtype: groupScores.dtype));
                var scoreMask = groupMask.unsqueeze(-1).expand(n, groups, perGroup).reshape(n, experts);
                choice = choice.masked_fill(scoreMask.logical_not(), double.NegativeInfinity);
            }
            if (filter is not null) choice = filter(choice);
        }
        return choice.topk(k, dim: -1, sorted: false).indexes.MoveToOuterDisposeScope();   // (N, k)
    }

    // The decode step's router kernel when it computes this router's choice (V3 sigmoid routing, a correction bias or
    // one group, no selection filter) on logits' device, else null.
    private PostTrain.Core.Kernels.IDecodeKernels? SelectKernel(Tensor logits) =>
        c.ScoringFunc == "sigmoid" && (c.UseCorrectionBias || c.NGroup == 1) && SelectionFilter is null
        && PostTrain.Core.Kernels.DecodeKernels.RouterFits(c.NRoutedExperts, c.NGroup)
            ? PostTrain.Core.Kernels.DecodeKernels.For(logits)
            : null;

    // The experts of each token, (N, k) int64: biased scores, group limit, selection filter, top-k; then replayed
    // experts where ReplayExperts says so. Keeps LastChoice when asked. The choice itself takes no gradient, so on CUDA
    // V3 routing without a selection filter chooses in the decode step's fused kernel (~16 kernels -> 1, the same
    // experts: Kernels.DecodeKernels' self-check compares the sets exactly) also when training.
    private Tensor Select(Tensor scores, Tensor logits)
    {
        var bias = c.UseCorrectionBias ? e_score_correction_bias : null;
        Tensor idx;
        if (SelectKernel(logits) is { } fused)
        {
            using var noGrad = no_grad();
            var (fi, fw, fs) = fused.RouterSelect(logits.detach(), bias?.to(ScalarType.Float32, logits.device), c.NGroup, c.TopkGroup, c.NumExpertsPerTok,
                c.NormTopkProb, c.RoutedScalingFactor);
            fw.Dispose();
            fs.Dispose();
            idx = fi;
        }
        else idx = ChooseExperts(scores, bias, c.NGroup, c.TopkGroup, c.NumExpertsPerTok, SelectionFilter);   // (N, k)
        if (KeepLastChoice || ReplayExperts is not null)
        {
            LastChoice?.Dispose();
            LastChoice = idx.clone().DetachFromDisposeScope();
        }
        if (ReplayExperts is { } forced)
        {
            if (forced.shape.Length != 2 || forced.shape[0] != idx.shape[0] || forced.shape[1] != idx.shape[1])
                throw new InvalidOperationException($"Router.ReplayExperts: shape [{string.Join(", ", forced.shape)}], the call routes [{string.Join(", ", idx.shape)}]");
            var recorded = forced.select(1, 0).ge(0).unsqueeze(1);                  // (N, 1): rows with replayed experts
            idx = where(recorded, forced.to(idx.device), idx);
        }
        return idx;
    }
}
