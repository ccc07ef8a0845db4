// sft: supervised fine-tuning of the core model. Loss on the assistant's/completion's tokens (or all tokens), mean
// over the target tokens of the global batch (gradient accumulation divides by the global count, not per micro-batch),
// plus the MTP loss (lambda / D) and the optional sequence-wise balance loss; AdamW (optional bf16 moments), gradient
// clipping, LR schedule, aux-loss-free MoE bias updates after each optimizer step, evaluation loss on a held-out split,
// metrics (JSONL + TensorBoard), progress, NaN/inf steps skipped, atomic checkpoints with exact resume, and the final
// model written as a Hugging Face directory (<output_dir>/final).
// Data parallel (several ranks, see Distributed/DataParallel): each rank trains on its share of every global batch's
// rows; loss sums and token counts are summed over the ranks; rank 0 logs, evaluates' totals, and writes checkpoints
// (the optimizer state gathered into the single-process format) and the final model.
using System.Diagnostics;
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;
using PostTrain.Core.Precision;
using PostTrain.Data;
using PostTrain.Data.Tokenizers;
using PostTrain.Training.Common;
using PostTrain.Training.Distributed;
using PostTrain.Training.Infra;
using PostTrain.Training.Recipes;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Training.Sft;

public sealed class SftRecipe(SftConfig cfg) : IRecipe
{
    public const string FinalDirName = "final";

    private DeepSeekForCausalLM _model = null!;
    private ITokenizer _tokenizer = null!;
    private Device _device = CPU;
    private DataParallel _dp = null!;
    private ILrSchedule _schedule = null!;
    private CheckpointManager _checkpoints = null!;
    private MetricsLogger _metrics = null!;
    private SftBatches _data = null!;
    private readonly DataStats _stats = new();
    private TrainerState _state = new();
    private IEnumerator<SftBatch>? _stream;

    /// <summary>Evaluation losses in step order (for callers such as tests and pipelines).</summary>
    public List<(long Step, double Loss)> EvalLosses { get; } = [];
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
        random.manual_seed(cfg.Seed);
        var loaded = ModelSetup.Load(cfg.Model, cfg.Seed, ctx.Log);
        (_model, _tokenizer, _device) = (loaded.Model, loaded.Tokenizer, loaded.Device);
        foreach (var moe in _model.MoeLayers()) moe.BalanceAlpha = cfg.MoeBalanceAlpha;
        var o = cfg.Optimizer;
        if (o.Name != OptimizerKind.AdamW) throw new RecipeConfigException("optimizer.name: sft supports adamw");
        var named = _model.named_parameters().Select(p => (p.name, p.parameter)).ToList();
        _dp = new DataParallel(cfg.Distributed, named, ps => new AdamW(ps, o.Lr, o.Betas[0], o.Betas[1], o.Eps, o.WeightDecay, o.Bf16Moments,
            ps.Select(p => p.Name).Where(ModelSetup.NoDecay)));
        _schedule = LrSchedules.FromConfig(cfg.Scheduler, o.Lr, cfg.MaxSteps);
        _checkpoints = new CheckpointManager(cfg.OutputDir, cfg.Checkpoint.KeepLast);
        _data = new SftBatches(cfg.Data, _tokenizer, _stats);

        var resume = cfg.Checkpoint.Resume ? _checkpoints.FindLatest() : null;
        if (resume is not null) LoadCheckpoint(resume, ctx);
        if (_dp.IsMain) _metrics = new MetricsLogger(cfg.OutputDir, cfg.Logging.Tensorboard, resumedFromStep: resume?.Step);
        OpenEpoch(_state.Epoch, skip: _state.DataPosition);
    }

    private void OpenEpoch(int epoch, long skip)
    {
        _stream?.Dispose();
        _stream = _data.Epoch(cfg.Data.Path, cfg.Seed, epoch, cfg.Data.Shuffle).Skip((int)skip).GetEnumerator();
        _state = _state with { Epoch = epoch, DataPosition = skip };
    }

    private SftBatch NextBatch()
    {
        if (_stream!.MoveNext()) { _state = _state with { DataPosition = _state.DataPosition + 1 }; return _stream.Current; }
        if (_state.DataPosition == 0)
            throw new RecipeConfigException($"data.path: '{cfg.Data.Path}' gave no training rows ({_stats})");
        OpenEpoch(_state.Epoch + 1, 0);
        return NextBatch();
    }

    private void Train(RecipeContext ctx, CancellationToken ct)
    {
        var guard = new NonFiniteGuard(cfg.MaxConsecutiveNonfinite);
        using var progress = _dp.Progress(() => ctx.CreateProgress(cfg.Logging, cfg.MaxSteps, _state.Step));
        var log = _dp.Log(ctx.Log);
        if (cfg.Data.EvalPath is not null && _state.Step == 0) LogEval(0, progress);
        while (_state.Step < cfg.MaxSteps)
        {
            ct.ThrowIfCancellationRequested();
            var sw = Stopwatch.StartNew();
            double lr = _schedule.At(_state.Step);
            var batches = Enumerable.Range(0, cfg.GradientAccumulationSteps).Select(_ => NextBatch()).ToList();
            var r = Step(batches, lr, guard);
            double seconds = sw.Elapsed.TotalSeconds;
            long tokens = batches.Sum(b => b.RealTokens);
            _state = _state with { Step = _state.Step + 1, TokensSeen = _state.TokensSeen + tokens, LearningRate = lr };
            TrainLosses.Add(r.Loss);

            if (_state.Step % cfg.Logging.EveryNSteps == 0 || _state.Step == cfg.MaxSteps)
            {
                var values = new List<(string, double)>
                {
                    ("loss", r.Loss), ("token_accuracy", r.Accuracy), ("lr", lr), ("grad_norm", r.GradNorm),
                    ("tokens_per_s", tokens / seconds), ("skipped_steps", guard.TotalSkipped),
                };
                if (r.MtpLoss is double m) values.Add(("mtp_loss", m));
                for (int i = 0; i < r.LoadRatios.Length; i++) values.Add(($"moe/max_over_mean_load/layer{i}", r.LoadRatios[i]));
                if (r.LoadRatios.Length > 0) values.Add(("moe/max_over_mean_load", r.LoadRatios.Max()));
                _metrics?.Log(_state.Step, [.. values]);
            }
            progress.Update(_state.Step, r.Loss, tokens);
            if (cfg.Data.EvalPath is not null && cfg.Data.EvalEveryNSteps > 0 &&
                (_state.Step % cfg.Data.EvalEveryNSteps == 0 || _state.Step == cfg.MaxSteps))
                LogEval(_state.Step, progress);
            bool periodic = cfg.Checkpoint.EveryNSteps > 0 && _state.Step % cfg.Checkpoint.EveryNSteps == 0;
            if (periodic || _state.Step == cfg.MaxSteps)
                progress.Message($"saved {SaveCheckpoint(ctx)}");
        }
        string final = Path.Combine(cfg.OutputDir, FinalDirName);
        if (_dp.IsMain) PretrainedModel.Save(_model, final);
        _dp.Group.Barrier();
        if (_stats.Skipped + _stats.Truncated + _stats.Dropped > 0) log.WriteLine($"data: {_stats}");
        log.WriteLine($"final model: {final}");
    }

    private sealed record StepResult(double Loss, double Accuracy, double GradNorm, double? MtpLoss, double[] LoadRatios);

    /// <summary>One optimizer step over the micro-batches. The loss is the mean over the global batch's target tokens.</summary>
    private StepResult Step(List<SftBatch> micro, double lr, NonFiniteGuard guard)
    {
        using var scope = NewDisposeScope();
        _model.train();
        _dp.LearningRate = lr;
        _dp.ZeroGrad();
        bool mtp = cfg.MtpLambda > 0 && _model.Mtp.Count > 0;
        long globalTargets = micro.Sum(b => b.TargetTokens);
        var mtpCounts = mtp ? Enumerable.Range(1, _model.Mtp.Count).Select(k => micro.Sum(b => b.MtpTargetTokens(k))).ToList() : null;
        double lossSum = 0, mtpSum = 0, correct = 0;
        foreach (var batch in micro)
        {
            using var inner = NewDisposeScope();
            var rows = _dp.Shard(batch.Rows);                  // this rank's rows of the global micro-batch
            if (rows.Count == 0) continue;
            var (ids, labels, pos, seg) = ToTensors(new SftBatch(rows));
            var output = _model.Forward(ids, pos, new AttentionMask(SegmentIds: seg), computeMtp: mtp);
            var parts = Losses.Compute(_model, output, labels, seg);
            var total = Losses.Total(parts, globalTargets, mtpCounts, cfg.MtpLambda);
            total.backward();
            lossSum += parts.MainSum.item<float>();
            if (mtp) mtpSum += parts.Mtp[0].Sum.item<float>();
            using (no_grad())
                correct += (output.Logits.argmax(-1) == labels).logical_and(labels != Losses.Ignore).sum().item<long>();
        }
        (lossSum, mtpSum, correct) = _dp.Sum(lossSum, mtpSum, correct) switch { var t => (t[0], t[1], t[2]) };
        double loss = lossSum / Math.Max(1, globalTargets);
        double gradNorm = double.NaN;
        double[] ratios;
        if (guard.Check(loss, _state.Step) == LossVerdict.Continue)
        {
            gradNorm = _dp.Step(cfg.ClipGradNorm);            // gradient sync over the ranks, global clipping, AdamW
            ratios = MoeBalancer.Step(_model, cfg.MoeBiasGamma, _dp.Group);
        }
        else ratios = MoeBalancer.Step(_model, 0, _dp.Group);   // a skipped step moves nothing, but clears its loads
        _dp.ZeroGrad();
        return new StepResult(loss, correct / Math.Max(1, globalTargets), gradNorm,
            mtp ? mtpSum / Math.Max(1, mtpCounts![0]) : null, ratios);
    }

    private (Tensor Ids, Tensor Labels, Tensor Pos, Tensor Seg) ToTensors(SftBatch b)
    {
        int n = b.Rows.Count, len = b.Rows[0].Length;
        var ids = new long[n * len]; var labels = new long[n * len]; var pos = new long[n * len]; var seg = new long[n * len];
        for (int i = 0; i < n; i++)
        {
            var r = b.Rows[i];
            for (int t = 0; t < len; t++)
            {
                int at = i * len + t;
                ids[at] = r.InputIds[t]; labels[at] = r.Labels[t]; pos[at] = r.PositionIds[t]; seg[at] = r.SequenceIds[t];
            }
        }
        return (tensor(ids, [n, len], device: _device), tensor(labels, [n, len], device: _device),
            tensor(pos, [n, len], device: _device), tensor(seg, [n, len], device: _device));
    }

    /// <summary>Mean token cross-entropy over the first eval_batches batches of the held-out split.</summary>
    public double EvalLoss()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        _model.eval();
        double sum = 0; long count = 0;
        long index = -1;
        foreach (var batch in _data.Epoch(cfg.Data.EvalPath!, cfg.Seed, 0, shuffle: false).Take(cfg.Data.EvalBatches))
        {
            if (!_dp.Owns(++index)) continue;                  // eval batches round-robin over the ranks
            using var inner = NewDisposeScope();
            var (ids, labels, pos, seg) = ToTensors(batch);
            var output = _model.Forward(ids, pos, new AttentionMask(SegmentIds: seg));
            var (s, c) = Losses.CrossEntropySum(output.Logits, labels);
            sum += s.item<float>(); count += c;
        }
        foreach (var moe in _model.MoeLayers()) moe.TakeLoads();   // eval routing does not count towards balancing
        var totals = _dp.Sum(sum, count);
        return totals[0] / Math.Max(1, totals[1]);
    }

    private void LogEval(long step, IProgressReporter progress)
    {
        double loss = EvalLoss();
        EvalLosses.Add((step, loss));
        _metrics?.Log(step, ("eval_loss", loss));
        progress.Message($"step {step}: eval loss {loss:F4}");
    }

    /// <summary>Rank 0 writes the checkpoint (the optimizer state gathered from every rank first); returns its directory.</summary>
    private string SaveCheckpoint(RecipeContext ctx)
    {
        using var scope = NewDisposeScope();
        var optimizerState = _dp.FullStateDict();              // collective: every rank takes part
        string dir = "";
        if (_dp.IsMain)
        {
            var state = _state with { TorchRngState = TorchRng.Capture() };
            dir = _checkpoints.Save(state, d =>
            {
                PretrainedModel.Save(_model, Path.Combine(d, "model"));
                SafeTensors.Save(Path.Combine(d, "optimizer.safetensors"), optimizerState.ToDictionary(kv => kv.Key, kv => kv.Value.cpu()));
                File.WriteAllText(Path.Combine(d, RecipeRunner.ResolvedConfigFileName), ctx.ResolvedYaml);
            }).Directory;
        }
        _dp.Group.Barrier();                                   // the checkpoint exists before any rank goes on
        return dir;
    }

    private void LoadCheckpoint(CheckpointInfo ck, RecipeContext ctx)
    {
        var tensors = SafeTensors.Load(Path.Combine(ck.Directory, "model"));
        HfStateDict.Load(_model, tensors, Path.Combine(ck.Directory, "model"));
        var opt = SafeTensors.Load(Path.Combine(ck.Directory, "optimizer.safetensors"), new SafeTensorsLoadOptions { Device = _device });
        _dp.LoadStateDict(opt);
        _state = ck.State with { TorchRngState = null };
        if (ck.State.TorchRngState is { } torchRng) TorchRng.Restore(torchRng);
        _dp.Log(ctx.Log).WriteLine($"resumed from {ck.Directory} (step {ck.Step}, epoch {ck.State.Epoch}, batch {ck.State.DataPosition})");
    }

    private void Cleanup()
    {
        _stream?.Dispose();
        _metrics?.Dispose();
        _dp?.Dispose();
        _model?.Dispose();
    }
}
