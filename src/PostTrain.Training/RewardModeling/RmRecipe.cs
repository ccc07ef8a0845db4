// rm: reward-model training on preference pairs. A scalar head on the core model (RewardModel) reads the last real
// token of prompt + chosen and prompt + rejected; the loss is Bradley-Terry with an optional per-pair margin and TRL's
// centering term (BradleyTerry), a mean over the global batch's pairs. AdamW, LR schedule, gradient accumulation and
// clipping, aux-loss-free MoE bias updates, NaN/inf steps skipped, held-out accuracy / margin / loss at step 0, every
// eval_every_n_steps and at the end, metrics (JSONL + TensorBoard), progress, atomic checkpoints with exact resume,
// and the final reward model as a Hugging Face directory (<output_dir>/final, DeepseekV3ForSequenceClassification).
// Simplification: each micro-batch is right-padded to its longest sequence (no packing).
using System.Diagnostics;
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;
using PostTrain.Core.Precision;
using PostTrain.Data.Templates;
using PostTrain.Data.Tokenizers;
using PostTrain.Training.Common;
using PostTrain.Training.Grpo;
using PostTrain.Training.Infra;
using PostTrain.Training.Recipes;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Training.RewardModeling;

public sealed class RmRecipe(RmConfig cfg) : IRecipe
{
    public const string FinalDirName = "final";

    private RewardModel _model = null!;
    private ITokenizer _tokenizer = null!;
    private string? _tokenizerDir;
    private Device _device = CPU;
    private AdamW _optimizer = null!;
    private ILrSchedule _schedule = null!;
    private CheckpointManager _checkpoints = null!;
    private MetricsLogger _metrics = null!;
    private PreferencePairs _train = null!;
    private PreferencePairs? _eval;
    private TrainerState _state = new();
    private int[] _order = [];

    /// <summary>Held-out metrics in step order (for callers such as tests).</summary>
    public List<(long Step, PreferenceMetrics Metrics)> Evals { get; } = [];
    public List<double> TrainLosses { get; } = [];

    public async Task<int> RunAsync(RecipeContext ctx, CancellationToken ct)
    {
        try
        {
            Setup(ctx);
            await Task.Run(() => Train(ctx, ct), ct);
            return 0;
        }
        finally
        {
            Cleanup();
        }
    }

    private void Setup(RecipeContext ctx)
    {
        if (cfg.GradientAccumulationSteps < 1) throw new RecipeConfigException("gradient_accumulation_steps: must be >= 1");
        if (cfg.Data.BatchSize < 1) throw new RecipeConfigException($"data.batch_size: must be >= 1, got {cfg.Data.BatchSize}");
        if (cfg.Data.MaxSeqLen < 1) throw new RecipeConfigException($"data.max_seq_len: must be >= 1, got {cfg.Data.MaxSeqLen}");
        if (cfg.Optimizer.Name != OptimizerKind.AdamW) throw new RecipeConfigException("optimizer.name: rm supports adamw");
        random.manual_seed(cfg.Seed);
        var loaded = RewardModelSetup.Load(cfg.Model, cfg.Seed, cfg.HeadInitStd, ctx.Log);
        (_model, _tokenizer, _device, _tokenizerDir) = (loaded.Model, loaded.Tokenizer, loaded.Device, loaded.TokenizerDir);
        foreach (var moe in _model.Backbone.MoeLayers()) moe.BalanceAlpha = cfg.MoeBalanceAlpha;

        var template = ChatTemplates.Resolve(cfg.Data.ChatTemplate, _tokenizer, _tokenizerDir, kwargs: ChatTemplates.ParseKwargs(cfg.Data.ChatTemplateKwargs));
        _train = new PreferencePairs(cfg.Data.Path, cfg.Data, template);
        ctx.Log.WriteLine($"pairs: {_train.Items.Count} from {cfg.Data.Path}" + DataNote(_train));
        if (cfg.Data.EvalPath is { } evalPath)
        {
            _eval = new PreferencePairs(evalPath, cfg.Data, template, cfg.Data.EvalPairs, "data.eval_path");
            ctx.Log.WriteLine($"held-out pairs: {_eval.Items.Count} from {evalPath}" + DataNote(_eval));
        }

        var o = cfg.Optimizer;
        var named = _model.named_parameters().Select(p => (p.name, p.parameter)).ToList();
        _optimizer = new AdamW(named, o.Lr, o.Betas[0], o.Betas[1], o.Eps, o.WeightDecay, o.Bf16Moments,
            named.Select(p => p.name).Where(ModelSetup.NoDecay));
        _schedule = LrSchedules.FromConfig(cfg.Scheduler, o.Lr, cfg.MaxSteps);
        _checkpoints = new CheckpointManager(cfg.OutputDir, cfg.Checkpoint.KeepLast);

        var resume = cfg.Checkpoint.Resume ? _checkpoints.FindLatest() : null;
        if (resume is not null) LoadCheckpoint(resume, ctx);
        _metrics = new MetricsLogger(cfg.OutputDir, cfg.Logging.Tensorboard, resumedFromStep: resume?.Step);
        _order = _train.Order(cfg.Seed, _state.Epoch, cfg.Data.Shuffle);
    }

    private string DataNote(PreferencePairs p) =>
        p.DroppedTooLong + p.Stats.Skipped > 0
            ? $" ({p.DroppedTooLong} longer than {cfg.Data.MaxSeqLen} tokens dropped, {p.Stats.Skipped} bad rows skipped)" : "";

    /// <summary>The next batch_size pairs of the epoch order, starting a new epoch when it runs out.</summary>
    private List<PreferencePair> NextBatch()
    {
        var indices = new List<int>(cfg.Data.BatchSize);
        _state = _state.TakeNext(cfg.Data.BatchSize, ref _order, epoch => _train.Order(cfg.Seed, epoch, cfg.Data.Shuffle), indices);
        return indices.Select(i => _train.Items[i]).ToList();
    }

    private void Train(RecipeContext ctx, CancellationToken ct)
    {
        var guard = new NonFiniteGuard(cfg.MaxConsecutiveNonfinite);
        using var progress = ctx.CreateProgress(cfg.Logging, cfg.MaxSteps, _state.Step);
        if (_eval is not null && _state.Step == 0) LogEval(0, progress);
        while (_state.Step < cfg.MaxSteps)
        {
            ct.ThrowIfCancellationRequested();
            var sw = Stopwatch.StartNew();
            double lr = _schedule.At(_state.Step);
            var micro = Enumerable.Range(0, cfg.GradientAccumulationSteps).Select(_ => NextBatch()).ToList();
            var (m, gradNorm) = Step(micro, lr, guard);
            double seconds = sw.Elapsed.TotalSeconds;
            long tokens = micro.Sum(b => b.Sum(p => (long)p.Chosen.Length + p.Rejected.Length));
            _state = _state with { Step = _state.Step + 1, TokensSeen = _state.TokensSeen + tokens, LearningRate = lr };
            TrainLosses.Add(m.Loss);

            if (_state.Step % cfg.Logging.EveryNSteps == 0 || _state.Step == cfg.MaxSteps)
                _metrics.Log(_state.Step, ("loss", m.Loss), ("accuracy", m.Accuracy), ("margin", m.Margin), ("reward_mean", m.RewardMean),
                    ("lr", lr), ("grad_norm", gradNorm), ("pairs_per_s", m.Pairs / seconds), ("tokens_per_s", tokens / seconds),
                    ("skipped_steps", guard.TotalSkipped));
            progress.Update(_state.Step, m.Loss, tokens);
            if (_eval is not null && cfg.Data.EvalEveryNSteps > 0 &&
                (_state.Step % cfg.Data.EvalEveryNSteps == 0 || _state.Step == cfg.MaxSteps))
                LogEval(_state.Step, progress);
            bool periodic = cfg.Checkpoint.EveryNSteps > 0 && _state.Step % cfg.Checkpoint.EveryNSteps == 0;
            if (periodic || _state.Step == cfg.MaxSteps)
                progress.Message($"saved {SaveCheckpoint(ctx).Directory}");
        }
        string final = Path.Combine(cfg.OutputDir, FinalDirName);
        RewardModelFiles.Save(_model, final, _tokenizer.PadId, extraFiles: RewardModelSetup.TokenizerFiles(_tokenizerDir));
        if (Evals.Count > 0)
        {
            var (first, last) = (Evals[0], Evals[^1]);
            ctx.Log.WriteLine($"held-out accuracy: {first.Metrics.Accuracy:P1} at step {first.Step} -> {last.Metrics.Accuracy:P1} at step {last.Step} " +
                $"({last.Metrics.Pairs} pairs, mean margin {last.Metrics.Margin:F3})");
        }
        ctx.Log.WriteLine($"final reward model: {final}");
    }

    /// <summary>One optimizer step over the micro-batches; the loss is the mean over the global batch's pairs.</summary>
    private (PreferenceMetrics Metrics, double GradNorm) Step(List<List<PreferencePair>> micro, double lr, NonFiniteGuard guard)
    {
        using var scope = NewDisposeScope();
        _model.train();
        _optimizer.LearningRate = lr;
        _optimizer.ZeroGrad();
        long globalPairs = micro.Sum(b => b.Count);
        var chosen = new List<double>(); var rejected = new List<double>(); var margins = new List<double>();
        foreach (var batch in micro)
        {
            using var inner = NewDisposeScope();
            int p = batch.Count;
            var (ids, keep) = RewardScoring.Pad([.. batch.Select(x => x.Chosen), .. batch.Select(x => x.Rejected)], _tokenizer.PadId, _device);
            var r = _model.Forward(ids, new AttentionMask(KeyPadding: keep));                  // (2P,): chosen then rejected
            var (rc, rr) = (r.narrow(0, 0, p), r.narrow(0, p, p));
            var margin = _train.HasMargin ? tensor(batch.Select(x => (float)x.Margin).ToArray(), device: _device) : null;
            var loss = BradleyTerry.Loss(rc, rr, margin, cfg.CenterRewardsCoefficient, globalPairs);
            foreach (var moe in _model.Backbone.MoeLayers())
                if (moe.LastBalanceLoss is { } b) loss = loss + b / micro.Count;
            loss.backward();
            var host = r.detach().cpu().data<float>().ToArray();
            chosen.AddRange(host.Take(p).Select(x => (double)x));
            rejected.AddRange(host.Skip(p).Select(x => (double)x));
            margins.AddRange(batch.Select(x => x.Margin));
        }
        var m = BradleyTerry.Metrics(chosen, rejected, _train.HasMargin ? margins : null, cfg.CenterRewardsCoefficient);
        double gradNorm = double.NaN;
        if (guard.Check(m.Loss, _state.Step) == LossVerdict.Continue)
        {
            var ps = _model.parameters().Where(x => x.grad is not null).ToList();
            gradNorm = cfg.ClipGradNorm is double max ? nn.utils.clip_grad_norm_(ps, max) : nn.utils.clip_grad_norm_(ps, double.MaxValue);
            _optimizer.Step();
            MoeBalancer.Step(_model.Backbone, cfg.MoeBiasGamma);
        }
        else MoeBalancer.Step(_model.Backbone, 0);   // a skipped step moves nothing, but clears its loads
        _optimizer.ZeroGrad();
        return (m, gradNorm);
    }

    /// <summary>Accuracy, mean margin and loss on the held-out pairs (no gradients; routing loads discarded).</summary>
    public PreferenceMetrics Evaluate()
    {
        var pairs = _eval!.Items;
        var scores = RewardScoring.Score(_model, [.. pairs.Select(p => p.Chosen), .. pairs.Select(p => p.Rejected)],
            _tokenizer.PadId, 2 * cfg.Data.BatchSize, _device);
        int n = pairs.Count;
        return BradleyTerry.Metrics(scores.Take(n).ToList(), scores.Skip(n).ToList(),
            _eval.HasMargin ? pairs.Select(p => p.Margin).ToList() : null, cfg.CenterRewardsCoefficient);
    }

    private void LogEval(long step, IProgressReporter progress)
    {
        var m = Evaluate();
        Evals.Add((step, m));
        _metrics.Log(step, ("eval/accuracy", m.Accuracy), ("eval/margin", m.Margin), ("eval/loss", m.Loss), ("eval/reward_mean", m.RewardMean));
        progress.Message($"step {step}: held-out accuracy {m.Accuracy:P1}, margin {m.Margin:F3}, loss {m.Loss:F4} ({m.Pairs} pairs)");
    }

    private CheckpointInfo SaveCheckpoint(RecipeContext ctx)
    {
        var state = _state with { TorchRngState = TorchRng.Capture() };
        return _checkpoints.Save(state, dir =>
        {
            RewardModelFiles.Save(_model, Path.Combine(dir, "model"), _tokenizer.PadId, extraFiles: RewardModelSetup.TokenizerFiles(_tokenizerDir));
            using var scope = NewDisposeScope();
            SafeTensors.Save(Path.Combine(dir, "optimizer.safetensors"), _optimizer.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.cpu()));
            File.WriteAllText(Path.Combine(dir, RecipeRunner.ResolvedConfigFileName), ctx.ResolvedYaml);
        });
    }

    private void LoadCheckpoint(CheckpointInfo ck, RecipeContext ctx)
    {
        RewardModelFiles.LoadWeights(_model, Path.Combine(ck.Directory, "model"));
        var opt = SafeTensors.Load(Path.Combine(ck.Directory, "optimizer.safetensors"), new SafeTensorsLoadOptions { Device = _device });
        try { _optimizer.LoadStateDict(opt); }
        finally { foreach (var t in opt.Values) t.Dispose(); }
        _state = ck.State with { TorchRngState = null };
        if (ck.State.TorchRngState is { } torchRng) TorchRng.Restore(torchRng);
        ctx.Log.WriteLine($"resumed from {ck.Directory} (step {ck.Step}, epoch {ck.State.Epoch}, pair {ck.State.DataPosition})");
    }

    private void Cleanup()
    {
        _metrics?.Dispose();
        _optimizer?.Dispose();
        _model?.Dispose();
    }
}
