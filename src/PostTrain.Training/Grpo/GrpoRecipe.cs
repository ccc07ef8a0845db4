// grpo: Group Relative Policy Optimization (DeepSeekMath) with the common variants as options (Dr. GRPO, DAPO,
// GSPO). Per step: take B prompts, sample G completions each with the current policy (pi_old log-probs recorded by
// the sampler), score them with the recipe's weighted rewards, compute group-relative advantages (optionally
// dropping zero-variance groups and sampling more: DAPO dynamic sampling), then `mu` AdamW updates over the batch
// (PolicyUpdate). Logs rewards, KL, entropy, clip ratios, lengths, throughput and a time split per step; writes
// sample completions; checkpoints with exact resume (model as a Hugging Face directory, optimizer state, data
// position; sampling noise is a pure function of (seed, step, round)); optional greedy held-out eval before and
// after; the final model goes to <output_dir>/final (run mechanics: TrainingRun). Data parallel (several ranks): each
// step's prompts are split over the ranks (a group's G completions on one rank, row streams as in one process), the
// ranks exchange rewards and lengths (GroupView) so advantages and metrics are the global batch's, each trains on its
// groups with losses normalised by global counts (PolicyUpdate); held-out eval is sharded and gathered. Rank 0 logs,
// writes samples and checkpoints. With `lora:` only the adapters train and are saved (PEFT directories); rollouts and
// evaluation run with the adapters folded into the weights (restored exactly afterwards), and the beta > 0 reference
// is the same model with the adapters off: no second model. Expert parallel (distributed.expert_parallel = P): each
// rank trains with its 1/P of the routed experts (the EP forward exchanges tokens with the group, so every rank runs
// the same number of micro-batch passes: PolicyUpdate adds empty ones where a rank has fewer), and samples and
// evaluates with a full copy of the model gathered from the group before each step (ExpertParallelReplica: no
// collective inside a decode step). Simplification: generation and training share each rank's device. fast_path: on
// (and the run qualifies: GrpoFastPath) runs the policy updates through static-shape length buckets (one captured body
// per bucket on CUDA, eager on the CPU); rollouts are unchanged.
using PostTrain.Core.Distributed;
using PostTrain.Core.Model;
using PostTrain.Data.Templates;
using PostTrain.Data.Tokenizers;
using PostTrain.Rewards;
using PostTrain.Training.Distributed;
using PostTrain.Training.Infra;
using PostTrain.Training.Recipes;
using PostTrain.Training.Run;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Training.Grpo;

public sealed class GrpoRecipe(GrpoConfig cfg) : IRecipe
{
    public const string FinalDirName = TrainingRun.FinalDirName;

    private DeepSeekForCausalLM _model = null!;
    private DeepSeekForCausalLM? _reference;
    private ExpertParallelism? _experts;
    private ExpertParallelReplica? _replica;      // expert parallel: the full model the rollouts and the eval sample with
    private LoraAdapters? _lora;
    private ITokenizer _tokenizer = null!;
    private TrainingRun _run = null!;
    private PromptSet _prompts = null!;
    private RolloutCollector _rollouts = null!;
    private PolicyUpdate _update = null!;
    private GrpoFastPath? _fast;
    private HeldOutEval? _eval;
    private int[] _order = [];
    private readonly List<IDisposable> _ownedRewards = [];

    /// <summary>Mean total reward of each step's rollouts, in step order (for callers such as tests).</summary>
    public List<double> RewardMeans { get; } = [];
    public EvalResult? EvalBefore { get; private set; }
    public EvalResult? EvalAfter { get; private set; }

    public Task<int> RunAsync(RecipeContext ctx, CancellationToken ct) =>
        RecipeSteps.RunAsync(() => Setup(ctx), () => Train(ctx, ct), Cleanup, ct);

    private void Validate()
    {
        var g = cfg.Grpo;
        void Check(bool ok, string key, object value, string rule) { if (!ok) throw new RecipeConfigException($"{key}: must be {rule}, got {value}"); }
        Check(g.PromptsPerStep >= 1, "grpo.prompts_per_step", g.PromptsPerStep, ">= 1");
        Check(g.NumGenerations >= 2, "grpo.num_generations", g.NumGenerations, ">= 2 (advantages are relative to the group)");
        Check(g.Mu >= 1, "grpo.mu", g.Mu, ">= 1");
        Check(g.MicroBatchSize >= 1, "grpo.micro_batch_size", g.MicroBatchSize, ">= 1");
        Check(g.MaxCompletionLength >= 1, "grpo.max_completion_length", g.MaxCompletionLength, ">= 1");
        Check(g.Temperature > 0, "grpo.temperature", g.Temperature, "> 0 (sampling)");
        Check(g.Beta >= 0, "grpo.beta", g.Beta, ">= 0");
        Check(g.EpsilonLow is >= 0 and < 1, "grpo.epsilon_low", g.EpsilonLow, "in [0, 1)");
        Check(g.EpsilonHigh >= 0, "grpo.epsilon_high", g.EpsilonHigh, ">= 0");
        Check(g.AdvantageEps >= 0, "grpo.advantage_eps", g.AdvantageEps, ">= 0");
        Check(g.MaxSamplingRounds >= 1, "grpo.max_sampling_rounds", g.MaxSamplingRounds, ">= 1");
        Check(g.RolloutCorrectionCap > 1, "grpo.rollout_correction_cap", g.RolloutCorrectionCap, "> 1");
        Check(cfg.Rewards.Count >= 1, "rewards", cfg.Rewards.Count, "a list of at least one reward");
    }

    private void Setup(RecipeContext ctx)
    {
        Validate();
        random.manual_seed(cfg.Seed);
        var log = new DataParallel(Dist.World).Log(ctx.Log);   // rank 0 reports
        _experts = ExpertParallelSetup.Create(cfg.Distributed, cfg.Model, Dist.World, cfg.Lora is not null);
        var loaded = ModelSetup.Load(cfg.Model, cfg.Seed, log, _experts);
        (_model, _tokenizer) = (loaded.Model, loaded.Tokenizer);
        RunModel runModel = CausalLmRun.Of(_model, loaded.TokenizerDir);
        if (cfg.Lora is { } lora) (_lora, runModel) = LoraRun.Attach(_model, lora, cfg.Model.Path, cfg.Seed, loaded.TokenizerDir);
        if (cfg.Grpo.Beta > 0 && _lora is not null)
            log.WriteLine($"reference model: {cfg.Model.Path} = the policy with its LoRA adapters off (no second copy; beta {cfg.Grpo.Beta})");
        else if (cfg.Grpo.Beta > 0)
        {
            _reference = ModelSetup.Load(cfg.Model, cfg.Seed, TextWriter.Null, _experts).Model;   // the starting weights, frozen
            foreach (var p in _reference.parameters()) p.requires_grad = false;
            _reference.eval();
            log.WriteLine($"reference model: {cfg.Model.Path} (frozen, beta {cfg.Grpo.Beta})");
        }
        bool fast = GrpoFastPath.Decide(cfg, _model, _model.HeadWeight.device, Dist.World.Size, log);
        _run = TrainingRun.Start(ctx, cfg, runModel, dataParallel: true, fusedAdamW: fast);
        if (fast) _fast = GrpoFastPath.Over(cfg, _model, _run.Optimizer, _run.Output);
        // the plain update in one process frees the gradients after each update, so the rollouts get their memory (the
        // fast path's captured step keeps gradient addresses)
        _run.ReleaseGradients = !fast && _run.Parallel.Size == 1;
        log.WriteLine(MemoryPlan.Of(_model, _lora is null ? _model : _lora, cfg.Optimizer, cfg.Ema) +
            (_reference is null ? "" : $"; + the reference model {_reference.parameters().Sum(p => p.numel() * p.ElementSize) / 1e9:F2} GB"));
        if (_experts is { } ep)
        {
            _replica = new ExpertParallelReplica(_model);
            log.WriteLine($"expert parallel: groups of {ep.Size} ranks, {ep.Replicas.Size} replicas of each expert, each token's experts " +
                $"on at most {ep.MaxDevicesPerToken} ranks; rollouts and eval sample with a full copy gathered before each step " +
                $"({_replica.Bytes / 1e9:F2} GB per rank)");
        }
        var sampler = _replica?.Model ?? _model;

        var registry = RewardModeling.TrainingRewardRegistry.Create(cfg.RewardsDir);
        var runnerOptions = new RewardRunnerOptions { Timeout = TimeSpan.FromSeconds(cfg.RewardTimeoutSeconds) };
        var rewards = new RewardRunner(Owned(registry.CreateAll(cfg.Rewards.Select(r => r.ToSpec()))), runnerOptions);
        var template = ChatTemplates.Resolve(cfg.Data.ChatTemplate, _tokenizer, cfg.Model.Tokenizer ?? cfg.Model.Path, kwargs: ChatTemplates.ParseKwargs(cfg.Data.ChatTemplateKwargs));
        _prompts = new PromptSet(cfg.Data.Path, cfg.Data.PromptColumn, template, cfg.Data.MaxPromptTokens);
        log.WriteLine($"prompts: {_prompts.Items.Count} from {cfg.Data.Path}" +
            (_prompts.SkippedTooLong > 0 ? $" ({_prompts.SkippedTooLong} longer than {cfg.Data.MaxPromptTokens} tokens skipped)" : ""));
        _rollouts = new RolloutCollector(sampler, _tokenizer, rewards, cfg.Grpo);
        _update = _lora is null
            ? new PolicyUpdate(_model, _reference, _run, cfg.Grpo, cfg.MoeBiasGamma, fast: _fast)
            : new PolicyUpdate(_model, cfg.Grpo.Beta > 0 ? _model : null, _run, cfg.Grpo, 0, _lora.Disabled, _fast);   // frozen base: no bias steps
        if (cfg.Eval is { } e)
        {
            var evalPrompts = new PromptSet(e.Path, cfg.Data.PromptColumn, template, cfg.Data.MaxPromptTokens, e.Rows);
            var evalRewards = new RewardRunner(Owned(registry.CreateAll(e.Rewards.Select(r => r.ToSpec()))), runnerOptions);
            _eval = new HeldOutEval(_run.Parallel, evalPrompts, evalRewards, _tokenizer, e.MaxNewTokens ?? cfg.Grpo.MaxCompletionLength,
                e.Samples, cfg.Grpo.Temperature, cfg.Seed);
        }
        _order = _prompts.Order(cfg.Seed, _run.State.Epoch, cfg.Data.Shuffle);
    }

    // rewards holding native resources (a reward model) are disposed with the recipe
    private IReadOnlyList<WeightedReward> Owned(IReadOnlyList<WeightedReward> rewards)
    {
        _ownedRewards.AddRange(rewards.Select(r => r.Reward).OfType<IDisposable>());
        return rewards;
    }

    /// <summary>The next <paramref name="count"/> prompts of the epoch order, starting a new epoch when it runs out.</summary>
    private List<PromptItem> NextPrompts(int count)
    {
        var indices = new List<int>(count);
        _run.State = _run.State.TakeNext(count, ref _order, epoch => _prompts.Order(cfg.Seed, epoch, cfg.Data.Shuffle), indices);
        return indices.Select(i => _prompts.Items[i]).ToList();
    }

    private void Train(RecipeContext ctx, CancellationToken ct)
    {
        using var progress = _run.CreateProgress();
        if (_eval is not null)
        {
            EvalBefore = RunEval(ctx, progress, "before training", ct);
        }
        while (!_run.Done)
        {
            ct.ThrowIfCancellationRequested();
            double lr = _run.LearningRate;
            var values = Step(lr, progress, ct);
            _run.Advance(lr);
            if (_run.LogDue) _run.Log([.. values]);
            if (_run.CheckpointDue) progress.Message($"saved {_run.SaveCheckpoint().Directory}");
            if (_eval is not null && cfg.Eval!.EveryNSteps > 0 && _run.State.Step % cfg.Eval.EveryNSteps == 0 && !_run.Done)
                RunEval(ctx, progress, $"at step {_run.State.Step}", ct);
        }
        if (_eval is not null) EvalAfter = RunEval(ctx, progress, "after training", ct);
        string final = _run.SaveFinal();
        _run.Output.WriteLine($"final model: {final}");
    }

    /// <summary>One GRPO step; returns its metrics. Data parallel: every rank takes the same global prompts, samples and
    /// scores the groups of its contiguous share, and the ranks exchange group views (GroupView), so the choice of
    /// groups, the advantages and the metrics are the global batch's; each rank trains on its own groups.</summary>
    private List<(string, double)> Step(double lr, IProgressReporter progress, CancellationToken ct)
    {
        var g = cfg.Grpo;
        var dp = _run.Parallel;
        var rounds = new List<RolloutRound>();                 // this rank's share of each sampling round
        var views = new List<IReadOnlyList<GroupView>>();      // each round's groups, global
        long step = _run.State.Step;
        _replica?.Sync();                                       // the weights the rounds sample with (collective)
        IReadOnlyList<GroupView> SampleRound(int round)
        {
            using var merged = _lora?.Merged();   // the generation engine reads the weights directly
            var prompts = NextPrompts(g.PromptsPerStep);       // the global batch, the same on every rank
            var (first, count) = dp.ShardRange(prompts.Count);  // a group's G completions stay on one rank
            var r = _rollouts.Sample(prompts.Skip(first).Take(count).ToList(), SamplingSeed(step, round), first * g.NumGenerations, ct);
            rounds.Add(r);
            views.Add(GroupView.Gather(dp, r, first));
            return views[^1];
        }
        IReadOnlyList<GroupView> groups = g.DynamicSampling
            ? DynamicSampling.Collect(SampleRound, x => DynamicSampling.IsInformative(x.Rewards), g.PromptsPerStep, g.MaxSamplingRounds).Groups
            : SampleRound(0);

        var advantages = Advantages.Compute(groups.SelectMany(x => x.Rewards).ToList(), g.NumGenerations, g.AdvantageScaling, g.AdvantageEps);
        var samples = new List<TrainSample>();                 // this rank's groups, with their global advantages
        for (int i = 0; i < groups.Count; i++)
            if (groups[i].Local is { } local)
                samples.AddRange(local.Completions.Select((c, j) => new TrainSample(local.Prompt.Ids, c, advantages[i * g.NumGenerations + j])));
        var u = _update.Run(samples, lr);

        // rollout metrics describe the policy as sampled: the first round, before any filtering
        var first = views[0];
        var all = first.SelectMany(x => x.Completions).ToList();
        var rewards = all.Select(c => c.Reward).ToList();
        double mean = rewards.Average();
        RewardMeans.Add(mean);
        var times = dp.Max(rounds.Sum(r => r.GenerationSeconds), rounds.Sum(r => r.RewardSeconds));
        double genSeconds = times[0], rewardSeconds = times[1];
        double generated = dp.Sum(rounds.Sum(r => r.GeneratedTokens))[0];
        var values = new List<(string, double)>
        {
            ("loss", u.Loss), ("grad_norm", u.GradNorm), ("lr", lr),
            ("reward/mean", mean), ("reward/std", Advantages.SampleStd(rewards, 0, rewards.Count)),
            ("frac_reward_zero_std", first.Count(x => !DynamicSampling.IsInformative(x.Rewards)) / (double)first.Count),
            ("kl", u.Kl), ("entropy", u.Entropy), ("clip_ratio/low", u.ClipLow), ("clip_ratio/high", u.ClipHigh),
            ("completions/mean_length", all.Average(c => c.Tokens)),
            ("completions/min_length", all.Min(c => c.Tokens)),
            ("completions/max_length", all.Max(c => c.Tokens)),
            ("completions/truncated_ratio", all.Count(c => c.Truncated) / (double)all.Count),
            ("tokens_per_s/rollout", generated / Math.Max(genSeconds, 1e-9)),
            ("tokens_per_s/train", u.TrainTokens / Math.Max(u.Seconds, 1e-9)),
            ("time/generation_s", genSeconds), ("time/reward_s", rewardSeconds), ("time/train_s", u.Seconds),
            ("rewards/scored_during_generation", ScoredDuringGeneration(dp, rounds[0])),
            ("sampling_rounds", rounds.Count), ("groups_trained", groups.Count), ("skipped_updates", u.SkippedUpdates),
        };
        var scores = GroupView.Scores(first, rounds[0].Scores.Names, rounds[0].Scores.Weights);
        values.AddRange(scores.ToMetrics().Select(kv => (kv.Key, kv.Value)));
        values.AddRange(u.Mismatch.ToMetrics());
        values.Add(("mismatch/is_weight_mean", u.IsWeightMean));
        values.Add(("mismatch/masked_fraction", u.MaskedFraction));
        if (!double.IsNaN(u.RoutingDisagreement)) values.Add(("mismatch/routing_disagreement", u.RoutingDisagreement));
        if (u.LoadRatios.Length > 0) values.Add(("moe/max_over_mean_load", u.LoadRatios.Max()));
        progress.Update(step + 1, u.Loss, (long)generated);
        if (cfg.SamplesEveryNSteps > 0 && (step + 1) % cfg.SamplesEveryNSteps == 0 && dp.IsMain)
        {
            var path = SampleLog.Write(cfg.OutputDir, step + 1, groups, advantages, scores.Names, cfg.SamplesGroups);
            progress.Message($"step {step + 1}: reward {mean:F3}, kl {u.Kl:F4}, entropy {u.Entropy:F3}, length {all.Average(c => c.Tokens):F1}; samples in {path}");
        }
        return values;
    }

    /// <summary>The sampler's seed for (step, round): a pure function, so a resumed run draws the same completions.</summary>
    private long SamplingSeed(long step, int round)
    {
        ulong x = (ulong)cfg.Seed ^ ((ulong)step << 20) ^ (ulong)round;
        return (long)(Rng.SplitMix64(ref x) & 0x7FFF_FFFF_FFFF_FFFF);
    }

    private EvalResult RunEval(RecipeContext ctx, IProgressReporter progress, string when, CancellationToken ct)
    {
        EvalResult r;
        _replica?.Sync();
        using (_lora?.Merged()) r = _eval!.Run(_replica?.Model ?? _model, ct);
        _run.Log([("eval/reward_mean", r.Mean), .. r.Metrics.Select(kv => (kv.Key, kv.Value))]);
        var names = string.Join("+", cfg.Eval!.Rewards.Select(x => x.Name));
        progress.Message($"held-out {names} (greedy, {r.Rows} rows of {cfg.Eval.Path}) {when}: {r.Mean:F3}" +
            (r.SampledMean is double sm ? $"; sampled (T={cfg.Grpo.Temperature:0.##}, {cfg.Eval.Samples} per prompt): {sm:F3}" : ""));
        return r;
    }

    private void Cleanup()
    {
        _fast?.Dispose();
        _run?.Dispose();
        _reference?.Dispose();
        _lora?.Dispose();
        _replica?.Dispose();
        _model?.Dispose();
        _experts?.Dispose();
        foreach (var r in _ownedRewards) r.Dispose();
    }

    /// <summary>The share of the first round's completions (over every rank) scored before generation ended.</summary>
    private static double ScoredDuringGeneration(DataParallel dp, RolloutRound round)
    {
        double n = round.Groups.Sum(g => g.Completions.Count);
        var sums = dp.Sum(n > 0 ? round.ScoredDuringGeneration * n : 0, n);
        return sums[1] > 0 ? sums[0] / sums[1] : 0;
    }
}
