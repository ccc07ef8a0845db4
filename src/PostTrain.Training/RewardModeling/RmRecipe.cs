// rm: reward-model training on preference pairs. A scalar head on the core model (RewardModel) reads the last real
// token of prompt + chosen and prompt + rejected; the loss is Bradley-Terry with an optional per-pair margin and TRL's
// centering term (BradleyTerry), a mean over the global batch's pairs. AdamW, LR schedule, gradient accumulation and
// clipping, aux-loss-free MoE bias updates, NaN/inf steps skipped, held-out accuracy / margin / loss at step 0, every
// eval_every_n_steps and at the end, metrics (JSONL + TensorBoard), progress, atomic checkpoints with exact resume,
// and the final reward model as a Hugging Face directory (<output_dir>/final, DeepseekV3ForSequenceClassification);
// the run mechanics are TrainingRun's.
// Simplification: each micro-batch is right-padded to its longest sequence (no packing).
// fast_path: on (and the run qualifies: RmFastPath) trains every step through the static-shape fast step instead:
// rows padded to data.max_seq_len, loss on the device, one CUDA graph per step on CUDA (eager on the CPU).
// Data parallel: each rank scores its contiguous share of every micro-batch's pairs; the scores are gathered for the
// metrics, the gradients summed by the run's optimizer (TrainingRun.Parallel).
using System.Diagnostics;
using PostTrain.Core.Distributed;
using PostTrain.Core.Model;
using PostTrain.Data.Templates;
using PostTrain.Data.Tokenizers;
using PostTrain.Training.Infra;
using PostTrain.Training.Recipes;
using PostTrain.Training.Run;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Training.RewardModeling;

public sealed class RmRecipe(RmConfig cfg) : IRecipe
{
    public const string FinalDirName = TrainingRun.FinalDirName;

    private RewardModel _model = null!;
    private ITokenizer _tokenizer = null!;
    private Device _device = CPU;
    private TrainingRun _run = null!;
    private PreferencePairs _train = null!;
    private PreferencePairs? _eval;
    private int[] _order = [];
    private RmFastPath? _fast;

    /// <summary>Held-out metrics in step order (for callers such as tests).</summary>
    public List<(long Step, PreferenceMetrics Metrics)> Evals { get; } = [];
    public List<double> TrainLosses { get; } = [];

    public Task<int> RunAsync(RecipeContext ctx, CancellationToken ct) =>
        RecipeSteps.RunAsync(() => Setup(ctx), () => Train(ctx, ct), Cleanup, ct);

    private void Setup(RecipeContext ctx)
    {
        if (cfg.Data.BatchSize < 1) throw new RecipeConfigException($"data.batch_size: must be >= 1, got {cfg.Data.BatchSize}");
        if (cfg.Data.MaxSeqLen < 1) throw new RecipeConfigException($"data.max_seq_len: must be >= 1, got {cfg.Data.MaxSeqLen}");
        random.manual_seed(cfg.Seed);
        var loaded = RewardModelSetup.Load(cfg.Model, cfg.Seed, cfg.HeadInitStd, ctx.Log);
        (_model, _tokenizer, _device) = (loaded.Model, loaded.Tokenizer, loaded.Device);
        foreach (var moe in _model.Backbone.MoeLayers()) moe.BalanceAlpha = cfg.MoeBalanceAlpha;

        var template = ChatTemplates.Resolve(cfg.Data.ChatTemplate, _tokenizer, loaded.TokenizerDir, kwargs: ChatTemplates.ParseKwargs(cfg.Data.ChatTemplateKwargs));
        _train = new PreferencePairs(cfg.Data.Path, cfg.Data, template);
        ctx.Log.WriteLine($"pairs: {_train.Items.Count} from {cfg.Data.Path}" + DataNote(_train));
        if (cfg.Data.EvalPath is { } evalPath)
        {
            _eval = new PreferencePairs(evalPath, cfg.Data, template, cfg.Data.EvalPairs, "data.eval_path");
            ctx.Log.WriteLine($"held-out pairs: {_eval.Items.Count} from {evalPath}" + DataNote(_eval));
        }

        int padId = _tokenizer.PadId;
        bool fast = RmFastPath.Decide(cfg, _model, _device, Dist.World.Size, Dist.IsMain ? ctx.Log : TextWriter.Null);
        _run = TrainingRun.Start(ctx, cfg, new RunModel(_model,
            (dir, extraFiles) => RewardModelFiles.Save(_model, dir, padId, extraFiles: extraFiles),
            dir => RewardModelFiles.LoadWeights(_model, dir), loaded.TokenizerDir), dataParallel: true, fusedAdamW: fast);
        if (fast) _fast = RmFastPath.Over(cfg, _model, _run.Optimizer, _train.HasMargin, _run.Output);
        _order = _train.Order(cfg.Seed, _run.State.Epoch, cfg.Data.Shuffle);
    }

    private string DataNote(PreferencePairs p) =>
        p.DroppedTooLong + p.Stats.Skipped > 0
            ? $" ({p.DroppedTooLong} longer than {cfg.Data.MaxSeqLen} tokens dropped, {p.Stats.Skipped} bad rows skipped)" : "";

    /// <summary>The next batch_size pairs of the epoch order, starting a new epoch when it runs out.</summary>
    private List<PreferencePair> NextBatch()
    {
        var indices = new List<int>(cfg.Data.BatchSize);
        _run.State = _run.State.TakeNext(cfg.Data.BatchSize, ref _order, epoch => _train.Order(cfg.Seed, epoch, cfg.Data.Shuffle), indices);
        return indices.Select(i => _train.Items[i]).ToList();
    }

    private void Train(RecipeContext ctx, CancellationToken ct)
    {
        using var progress = _run.CreateProgress();
        if (_eval is not null && _run.State.Step == 0) LogEval(0, progress);
        while (!_run.Done)
        {
            ct.ThrowIfCancellationRequested();
            var sw = Stopwatch.StartNew();
            double lr = _run.LearningRate;
            var micro = Enumerable.Range(0, cfg.GradientAccumulationSteps).Select(_ => NextBatch()).ToList();
            var (m, gradNorm) = _fast is null ? Step(micro, lr) : FastStep(micro, lr);
            double seconds = sw.Elapsed.TotalSeconds;
            long tokens = micro.Sum(b => b.Sum(p => (long)p.Chosen.Length + p.Rejected.Length));
            _run.Advance(lr, tokens);
            TrainLosses.Add(m.Loss);

            if (_run.LogDue)
                _run.Log(("loss", m.Loss), ("accuracy", m.Accuracy), ("margin", m.Margin), ("reward_mean", m.RewardMean),
                    ("lr", lr), ("grad_norm", gradNorm), ("pairs_per_s", m.Pairs / seconds), ("tokens_per_s", tokens / seconds),
                    ("skipped_steps", _run.SkippedSteps));
            progress.Update(_run.State.Step, m.Loss, tokens);
            if (_eval is not null && cfg.Data.EvalEveryNSteps > 0 &&
                (_run.State.Step % cfg.Data.EvalEveryNSteps == 0 || _run.Done))
                LogEval(_run.State.Step, progress);
            if (_run.CheckpointDue) progress.Message($"saved {_run.SaveCheckpoint().Directory}");
        }
        string final = _run.SaveFinal();
        if (Evals.Count > 0)
        {
            var (first, last) = (Evals[0], Evals[^1]);
            _run.Output.WriteLine($"held-out accuracy: {first.Metrics.Accuracy:P1} at step {first.Step} -> {last.Metrics.Accuracy:P1} at step {last.Step} " +
                $"({last.Metrics.Pairs} pairs, mean margin {last.Metrics.Margin:F3})");
        }
        _run.Output.WriteLine($"final reward model: {final}");
    }

    /// <summary>One optimizer step over the micro-batches; the loss is the mean over the global batch's pairs.</summary>
    private (PreferenceMetrics Metrics, double GradNorm) Step(List<List<PreferencePair>> micro, double lr)
    {
        using var scope = NewDisposeScope();
        _model.train();
        _run.BeginStep(lr);
        long globalPairs = micro.Sum(b => b.Count);
        var chosen = new List<double>(); var rejected = new List<double>(); var margins = new List<double>();
        foreach (var whole in micro)
        {
            using var inner = NewDisposeScope();
            var batch = _run.Parallel.Shard(whole);                  // data parallel: this rank's pairs of the global batch
            int p = batch.Count;
            if (p == 0) { GatherScores(new double[0], new double[0]); margins.AddRange(whole.Select(x => x.Margin)); continue; }
            int longest = whole.Max(x => Math.Max(x.Chosen.Length, x.Rejected.Length));   // as one process pads
            var (ids, keep) = RewardScoring.Pad([.. batch.Select(x => x.Chosen), .. batch.Select(x => x.Rejected)], _tokenizer.PadId, _device, longest);
            var r = _model.Forward(ids, new AttentionMask(KeyPadding: keep));                  // (2P,): chosen then rejected
            var (rc, rr) = (r.narrow(0, 0, p), r.narrow(0, p, p));
            var margin = _train.HasMargin ? tensor(batch.Select(x => (float)x.Margin).ToArray(), device: _device) : null;
            var loss = BradleyTerry.Loss(rc, rr, margin, cfg.CenterRewardsCoefficient, globalPairs);
            foreach (var moe in _model.Backbone.MoeLayers())   // a mean over this rank's sequences, weighted to the global mean
                if (moe.LastBalanceLoss is { } b) loss = loss + b * ((double)p / whole.Count) / micro.Count;
            loss.backward();
            var host = r.detach().cpu().data<float>().ToArray();
            var (c, j) = GatherScores(host.Take(p).Select(x => (double)x).ToArray(), host.Skip(p).Select(x => (double)x).ToArray());
            chosen.AddRange(c);
            rejected.AddRange(j);
            margins.AddRange(whole.Select(x => x.Margin));
        }
        var m = BradleyTerry.Metrics(chosen, rejected, _train.HasMargin ? margins : null, cfg.CenterRewardsCoefficient);
        var update = _run.Update(m.Loss);
        MoeBalancer.Step(_model.Backbone, update.Applied ? cfg.MoeBiasGamma : 0, _run.Parallel.Group);   // a skipped step moves nothing, but clears its loads
        return (m, update.GradNorm);
    }

    /// <summary>The fast path's step (RmFastPath): one device step over the padded micro-batches, the scores read after
    /// it for the metrics and the loss the run's NaN guard sees, and the MoE bias update as after the plain step.</summary>
    private (PreferenceMetrics Metrics, double GradNorm) FastStep(List<List<PreferencePair>> micro, double lr)
    {
        using var scope = NewDisposeScope();
        _model.train();
        _run.BeforeWeightsChange();
        var (chosen, rejected, norm) = _fast!.Step(micro, _tokenizer.PadId, lr);
        var margins = micro.SelectMany(b => b.Select(x => x.Margin)).ToList();
        var m = BradleyTerry.Metrics(chosen, rejected, _train.HasMargin ? margins : null, cfg.CenterRewardsCoefficient);
        var update = _run.UpdateRecorded(m.Loss, norm);
        MoeBalancer.Step(_model.Backbone, update.Applied ? cfg.MoeBiasGamma : 0, _run.Parallel.Group);
        return (m, update.GradNorm);
    }

    /// <summary>Every rank's scores of one micro-batch, in pair order (ranks hold contiguous shards).</summary>
    private (double[] Chosen, double[] Rejected) GatherScores(double[] chosen, double[] rejected)
    {
        var g = _run.Parallel.Group;
        if (g.Size == 1) return (chosen, rejected);
        var rows = g.AllGather(chosen.LongLength);
        using var mineC = tensor(chosen);
        using var mineJ = tensor(rejected);
        using var c = g.AllGatherV(mineC, rows);
        using var j = g.AllGatherV(mineJ, rows);
        return (c.data<double>().ToArray(), j.data<double>().ToArray());
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
        _run.LogAt(step, ("eval/accuracy", m.Accuracy), ("eval/margin", m.Margin), ("eval/loss", m.Loss), ("eval/reward_mean", m.RewardMean));
        progress.Message($"step {step}: held-out accuracy {m.Accuracy:P1}, margin {m.Margin:F3}, loss {m.Loss:F4} ({m.Pairs} pairs)");
    }

    private void Cleanup()
    {
        _fast?.Dispose();
        _run?.Dispose();
        _model?.Dispose();
    }
}
