// sft: supervised fine-tuning of the core model. Loss on the assistant's/completion's tokens (or all tokens), mean
// over the target tokens of the global batch (gradient accumulation divides by the global count, not per micro-batch),
// plus the MTP loss (lambda / D) and the optional sequence-wise balance loss; AdamW (optional bf16 moments), gradient
// clipping, LR schedule, aux-loss-free MoE bias updates after each optimizer step, evaluation loss on a held-out split,
// the training fast path when fast_path asks for it and the run qualifies (SftFastPath: one static-shape device step),
// metrics (JSONL + TensorBoard), progress, NaN/inf steps skipped, atomic checkpoints with exact resume, and the final
// model written as a Hugging Face directory with its tokenizer files (<output_dir>/final); the run mechanics are
// TrainingRun's. Data parallel: each rank trains on its share of every global batch's rows (TrainingRun.Parallel);
// loss sums, accuracy counts and evaluation sums are summed over the ranks; the sequence-wise balance loss (a mean over
// a rank's rows) is weighted by the rank's share of the batch's rows, so the summed gradients are one process's. Expert parallel (distributed.expert_parallel):
// the model holds this rank's routed experts; every rank of an EP group must run every forward (the experts exchange
// tokens), so each micro-batch and evaluation batch is sharded over all ranks and needs a row for each.
using System.Diagnostics;
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;
using PostTrain.Data;
using PostTrain.Data.Tokenizers;
using PostTrain.Core.Distributed;
using PostTrain.Training.Distributed;
using PostTrain.Training.Infra;
using PostTrain.Training.Recipes;
using PostTrain.Training.Run;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Training.Sft;

public sealed class SftRecipe(SftConfig cfg) : IRecipe
{
    public const string FinalDirName = TrainingRun.FinalDirName;

    private DeepSeekForCausalLM _model = null!;
    private ITokenizer _tokenizer = null!;
    private Device _device = CPU;
    private TrainingRun _run = null!;
    private LoraAdapters? _lora;
    private SftBatches _data = null!;
    private readonly DataStats _stats = new();
    private IEnumerator<SftBatch>? _stream;
    private ExpertParallelism? _experts;
    private SftFastPath? _fast;

    /// <summary>Evaluation losses in step order (for callers such as tests and pipelines).</summary>
    public List<(long Step, double Loss)> EvalLosses { get; } = [];
    public List<double> TrainLosses { get; } = [];

    public Task<int> RunAsync(RecipeContext ctx, CancellationToken ct) =>
        RecipeSteps.RunAsync(() => Setup(ctx), () => Train(ctx, ct), Cleanup, ct);

    private void Setup(RecipeContext ctx)
    {
        random.manual_seed(cfg.Seed);
        _experts = ExpertParallelSetup.Create(cfg.Distributed, cfg.Model, Dist.World, cfg.Lora is not null);
        var loaded = ModelSetup.Load(cfg.Model, cfg.Seed, ctx.Log, _experts);
        (_model, _tokenizer, _device) = (loaded.Model, loaded.Tokenizer, loaded.Device);
        foreach (var moe in _model.MoeLayers()) moe.BalanceAlpha = cfg.MoeBalanceAlpha;
        _data = new SftBatches(cfg.Data, _tokenizer, _stats, cfg.Model.Tokenizer ?? cfg.Model.Path);
        bool fast = SftFastPath.Decide(cfg, _model, _device, Dist.World.Size, Dist.IsMain ? ctx.Log : TextWriter.Null);
        _run = TrainingRun.Start(ctx, cfg, cfg.Lora is { } lora ? LoraRun(lora, loaded.TokenizerDir) : CausalLmRun.Of(_model, loaded.TokenizerDir),
            dataParallel: true, fusedAdamW: fast);
        if (fast) _fast = SftFastPath.Over(cfg, _model, _run.Optimizer, _run.Output);
        _run.Output.WriteLine(MemoryPlan.Of(_model, _lora is null ? _model : _lora, cfg.Optimizer, cfg.Ema));
        if (_experts is { } ep)
            _run.Output.WriteLine($"expert parallel: groups of {ep.Size} ranks, {ep.Replicas.Size} replicas of each expert, " +
                $"each token's experts on at most {ep.MaxDevicesPerToken} ranks");
        OpenEpoch(_run.State.Epoch, skip: _run.State.DataPosition);
    }

    /// <summary>LoRA: adapters on the frozen model; the run trains, saves and resumes the adapters only (PEFT directories).</summary>
    private RunModel LoraRun(LoraConfig lora, string? tokenizerDir)
    {
        (_lora, var run) = PostTrain.Training.Run.LoraRun.Attach(_model, lora, cfg.Model.Path, cfg.Seed, tokenizerDir);
        return run;
    }

    private void OpenEpoch(int epoch, long skip)
    {
        _stream?.Dispose();
        _stream = _data.Epoch(cfg.Data.Path, cfg.Seed, epoch, cfg.Data.Shuffle).Skip((int)skip).GetEnumerator();
        _run.State = _run.State with { Epoch = epoch, DataPosition = skip };
    }

    private SftBatch NextBatch()
    {
        if (_stream!.MoveNext()) { _run.State = _run.State with { DataPosition = _run.State.DataPosition + 1 }; return _stream.Current; }
        if (_run.State.DataPosition == 0)
            throw new RecipeConfigException($"data.path: '{cfg.Data.Path}' gave no training rows ({_stats})");
        OpenEpoch(_run.State.Epoch + 1, 0);
        return NextBatch();
    }

    private void Train(RecipeContext ctx, CancellationToken ct)
    {
        using var progress = _run.CreateProgress();
        if (cfg.Data.EvalPath is not null && _run.State.Step == 0) LogEval(0, progress);
        while (!_run.Done)
        {
            ct.ThrowIfCancellationRequested();
            var sw = Stopwatch.StartNew();
            double lr = _run.LearningRate;
            var batches = Enumerable.Range(0, cfg.GradientAccumulationSteps).Select(_ => NextBatch()).ToList();
            var r = Step(batches, lr);
            double seconds = sw.Elapsed.TotalSeconds;
            long tokens = batches.Sum(b => b.RealTokens);
            _run.Advance(lr, tokens);
            TrainLosses.Add(r.Loss);

            if (_run.LogDue)
            {
                var values = new List<(string, double)>
                {
                    ("loss", r.Loss), ("lr", lr), ("grad_norm", r.GradNorm),
                    ("tokens_per_s", tokens / seconds), ("skipped_steps", _run.SkippedSteps),
                };
                if (r.Accuracy is double acc) values.Insert(1, ("token_accuracy", acc));   // the fast step has no full logits
                if (r.MtpLoss is double m) values.Add(("mtp_loss", m));
                for (int i = 0; i < r.LoadRatios.Length; i++) values.Add(($"moe/max_over_mean_load/layer{i}", r.LoadRatios[i]));
                if (r.LoadRatios.Length > 0) values.Add(("moe/max_over_mean_load", r.LoadRatios.Max()));
                _run.Log([.. values]);
            }
            progress.Update(_run.State.Step, r.Loss, tokens);
            if (cfg.Data.EvalPath is not null && cfg.Data.EvalEveryNSteps > 0 &&
                (_run.State.Step % cfg.Data.EvalEveryNSteps == 0 || _run.Done))
                LogEval(_run.State.Step, progress);
            if (_run.CheckpointDue) progress.Message($"saved {_run.SaveCheckpoint().Directory}");
        }
        string final = _run.SaveFinal();
        if (_stats.Skipped + _stats.Truncated + _stats.Dropped > 0) _run.Output.WriteLine($"data: {_stats}");
        _run.Output.WriteLine($"final model: {final}");
    }

    private sealed record StepResult(double Loss, double? Accuracy, double GradNorm, double? MtpLoss, double[] LoadRatios);

    /// <summary>One optimizer step over the micro-batches. The loss is the mean over the global batch's target tokens.</summary>
    private StepResult Step(List<SftBatch> micro, double lr)
    {
        if (_fast is not null && micro.All(_fast.Fits)) return FastStep(micro, lr);
        using var scope = NewDisposeScope();
        _model.train();
        _lora?.train();
        _run.BeginStep(lr);
        bool mtp = cfg.MtpLambda > 0 && _model.Mtp.Count > 0;
        long globalTargets = micro.Sum(b => b.TargetTokens);
        var mtpCounts = mtp ? Enumerable.Range(1, _model.Mtp.Count).Select(k => micro.Sum(b => b.MtpTargetTokens(k))).ToList() : null;
        double lossSum = 0, mtpSum = 0, correct = 0;
        foreach (var batch in micro)
        {
            using var inner = NewDisposeScope();
            RequireRowPerRank(batch, "data.batch_size");
            var rows = _run.Parallel.Shard(batch.Rows);            // this rank's rows of the global micro-batch
            if (rows.Count == 0) continue;
            var (ids, labels, pos, seg) = ToTensors(new SftBatch(rows));
            var output = _model.Forward(ids, pos, new AttentionMask(SegmentIds: seg), computeMtp: mtp);
            var parts = Losses.Compute(_model, output, labels, seg);
            if (parts.Balance is { } balance && rows.Count < batch.Rows.Count)   // a mean over this rank's rows: weighted to the batch's mean
                parts = parts with { Balance = balance * ((double)rows.Count / batch.Rows.Count) };
            var total = Losses.Total(parts, globalTargets, mtpCounts, cfg.MtpLambda);
            PostTrain.Core.Runtime.MemoryTrace.Mark("loss", total);
            total.backward();
            PostTrain.Core.Runtime.MemoryTrace.Mark("backward", total);
            lossSum += parts.MainSum.item<float>();
            if (mtp) mtpSum += parts.Mtp[0].Sum.item<float>();
            using (no_grad())
                correct += (output.Logits.argmax(-1) == labels).logical_and(labels != Losses.Ignore).sum().item<long>();
        }
        var sums = _run.Parallel.Sum(lossSum, mtpSum, correct);    // over the ranks
        (lossSum, mtpSum, correct) = (sums[0], sums[1], sums[2]);
        double loss = lossSum / Math.Max(1, globalTargets);
        var update = _run.Update(loss);
        if (PostTrain.Core.Runtime.MemoryTrace.On && _model.parameters().FirstOrDefault() is { } anyParam) PostTrain.Core.Runtime.MemoryTrace.Mark("optimizer step", anyParam);
        // a skipped step moves nothing, but clears its loads; LoRA keeps the base model (routing biases included) frozen;
        // loads are summed over the ranks
        var ratios = MoeBalancer.Step(_model, update.Applied && _lora is null ? cfg.MoeBiasGamma : 0, _run.Parallel.Group);
        return new StepResult(loss, correct / Math.Max(1, globalTargets), update.GradNorm,
            mtp ? mtpSum / Math.Max(1, mtpCounts![0]) : null, ratios);
    }

    /// <summary>The fast path's step (SftFastPath): the micro-batches through the device step (one body, or one
    /// accumulation body each and the update), the losses and gradient norm read after it, the run's guard and EMA
    /// bookkeeping, and the MoE bias update as after the plain step. Reports the plain step's loss and mtp_loss.</summary>
    private StepResult FastStep(List<SftBatch> micro, double lr)
    {
        using var scope = NewDisposeScope();
        _model.train();
        _lora?.train();
        int depth = _fast!.MtpDepth;
        long globalTargets = micro.Sum(b => b.TargetTokens);
        var counts = new List<long> { globalTargets };
        counts.AddRange(Enumerable.Range(1, depth).Select(k => micro.Sum(b => b.MtpTargetTokens(k))));
        var tensors = micro.Select(b => ToTensors(new SftBatch(_run.Parallel.Shard(b.Rows)), full: true)).ToList();   // this rank's rows
        _run.BeforeWeightsChange();
        var (total, norm, mainSum, mtpSum) = _fast.Step(tensors, counts, lr);
        var sums = _run.Parallel.Sum(mainSum, mtpSum);   // over the ranks
        (mainSum, mtpSum) = (sums[0], sums[1]);
        var update = _run.UpdateRecorded(total, norm);
        var ratios = MoeBalancer.Step(_model, update.Applied && _lora is null ? cfg.MoeBiasGamma : 0, _run.Parallel.Group);
        return new StepResult(mainSum / Math.Max(1, globalTargets), null, update.GradNorm,
            depth > 0 ? mtpSum / Math.Max(1, counts[1]) : null, ratios);
    }

    /// <summary>Expert parallel: a batch with fewer rows than ranks would leave a rank out of the expert exchange
    /// (every rank sees the same global batch, so every rank stops with the same error).</summary>
    private void RequireRowPerRank(SftBatch batch, string key)
    {
        if (_experts is not null && batch.Rows.Count < _run.Parallel.Size)
            throw new RecipeConfigException($"{key}: a batch of {batch.Rows.Count} rows cannot give each of the {_run.Parallel.Size} " +
                "ranks a row, which distributed.expert_parallel > 1 needs (raise data.batch_size or lower the number of processes)");
    }

    /// <summary>The batch as (rows, length) tensors: cut to its longest row's real tokens (the padding every row has at the
    /// end dropped), or, with <paramref name="full"/>, the rows' whole padded length (the fast step's static shape).</summary>
    private (Tensor Ids, Tensor Labels, Tensor Pos, Tensor Seg) ToTensors(SftBatch b, bool full = false)
    {
        int n = b.Rows.Count, len = full ? b.Rows.Max(r => r.InputIds.Length) : b.Rows.Max(r => r.Length);
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
        _lora?.eval();
        double sum = 0; long count = 0;
        long index = -1;
        foreach (var batch in _data.Epoch(cfg.Data.EvalPath!, cfg.Seed, 0, shuffle: false).Take(cfg.Data.EvalBatches))
        {
            using var inner = NewDisposeScope();
            SftBatch mine = batch;
            if (_experts is not null)                              // expert parallel: every rank joins every forward
            {
                RequireRowPerRank(batch, "data.batch_size");
                mine = new SftBatch(_run.Parallel.Shard(batch.Rows));
            }
            else if (!_run.Parallel.Owns(++index)) continue;      // evaluation batches round-robin over the ranks
            var (ids, labels, pos, seg) = ToTensors(mine);
            var output = _model.Forward(ids, pos, new AttentionMask(SegmentIds: seg));
            var (s, c) = Losses.CrossEntropySum(output.Logits, labels);
            sum += s.item<float>(); count += c;
        }
        foreach (var moe in _model.MoeLayers()) moe.TakeLoads();   // eval routing does not count towards balancing
        var totals = _run.Parallel.Sum(sum, count);
        return totals[0] / Math.Max(1, totals[1]);
    }

    private void LogEval(long step, IProgressReporter progress)
    {
        double loss = EvalLoss();
        EvalLosses.Add((step, loss));
        _run.LogAt(step, ("eval_loss", loss));
        progress.Message($"step {step}: eval loss {loss:F4}");
    }

    private void Cleanup()
    {
        _stream?.Dispose();
        _fast?.Dispose();
        _run?.Dispose();
        _lora?.Dispose();
        _model?.Dispose();
        _experts?.Dispose();
    }
}
