// The training-run core every training recipe composes (sft, rm, grpo, toy_regression). It owns what a run needs
// besides the recipe's own model, data and loss, so that each exists once:
//   - the optimizer and LR schedule from the config, the NaN/inf guard and gradient clipping (Update);
//   - checkpoints (model directory with the tokenizer files, optimizer state, resolved config, trainer state with the
//     data position and RNG) and exact resume, refusing a resume whose config changed in keys that shape the run;
//   - the final model directory (with the tokenizer files, so the next stage reloads the same tokenizer);
//   - metrics (JSONL + TensorBoard, truncated to the resumed step), progress, and leftovers of a killed run removed.
// The recipe keeps its own order of steps: it calls Start in Setup, then per step LearningRate / BeginStep /
// Update / Advance / LogDue / CheckpointDue, and SaveFinal at the end (torchtune style: no base class).
// Data parallel (a run started as several ranks): Parallel shards the recipe's batches and sums its numbers; the
// optimizer is a DataParallelOptimizer (gradient sync, global clipping, ZeRO stage from `distributed:`); rank 0 alone
// writes metrics, progress, the model directory of each checkpoint and the final model; each rank writes its own share of
// the optimizer state (and of sharded parameters) into the checkpoint, committed by rank 0's manifest
// (DistributedCheckpoint). A run resumes from either layout at any number of ranks.
// EMA (`ema:`): a HostEma of the module's parameters, updated after every `every` applied steps (the copy to the host on
// this thread, the averaging in the background), saved in checkpoints (ema.safetensors, for exact resume) and as its
// own model directory <output_dir>/ema beside final/.
// Recompute (`recompute:`): set on the decoder the run trains (RunModel.Decoder under LoRA adapters); refused where it
// cannot apply (no decoder; layer with expert parallelism).
// Expert parallel (RunModel.ExpertParallel): the optimizer syncs the routed experts over their replica group, every rank
// joins RunModel.Consolidate before rank 0 writes a model directory, and checkpoints hold the optimizer state gathered
// into the single-process format (resumable at any rank count and expert-parallel size).
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Distributed;
using PostTrain.Core.Model;
using PostTrain.Core.Precision;
using PostTrain.Core.Recompute;
using PostTrain.Training.Distributed;
using PostTrain.Training.Infra;
using PostTrain.Training.Recipes;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Training.Run;

/// <summary>The outcome of an optimizer step: applied (finite loss) or skipped, and the gradient norm before clipping.</summary>
public readonly record struct UpdateResult(bool Applied, double GradNorm);

public sealed class TrainingRun : IDisposable
{
    public const string FinalDirName = "final";
    public const string ModelDirName = "model";
    public const string OptimizerFileName = "optimizer.safetensors";
    public const string EmaDirName = "ema";
    public const string EmaFileName = "ema.safetensors";

    private readonly RecipeContext _ctx;
    private readonly RunModel _model;
    private readonly NonFiniteGuard _guard;
    private readonly HostEma? _ema;

    public TrainerConfig Config { get; }
    public DataParallelOptimizer Optimizer { get; }
    public DataParallel Parallel { get; }
    public ILrSchedule Schedule { get; }
    public CheckpointManager Checkpoints { get; }
    /// <summary>Metrics (rank 0 only; null on the other ranks of a distributed run).</summary>
    public MetricsLogger? Metrics { get; }

    /// <summary>Parameters split over the ranks (RunModel.Sharded): stored per rank in distributed checkpoints.</summary>
    private IReadOnlyDictionary<string, TensorSlice> Sharded => _model.Sharded ?? new Dictionary<string, TensorSlice>();

    /// <summary>Step, epoch, data position, tokens seen; recipes advance it, checkpoints save it.</summary>
    public TrainerState State { get; set; } = new();

    /// <summary>The checkpoint this run resumed from, or null for a fresh start.</summary>
    public CheckpointInfo? ResumedFrom { get; }

    /// <summary>Steps skipped for a non-finite loss so far.</summary>
    private Fp8WeightCache? _fp8Weights;

    public long SkippedSteps => _guard.TotalSkipped;

    private TrainingRun(RecipeContext ctx, TrainerConfig cfg, RunModel model, bool dataParallel, bool fusedAdamW)
    {
        if (cfg.FastPath == PostTrain.Core.FastPath.FastPathMode.On && !fusedAdamW)
            throw new RecipeConfigException($"fast_path: on, but recipe {cfg.Recipe} has no fast path (sft, rm and grpo have); set fast_path: auto or off");
        if (cfg.GradientAccumulationSteps < 1)
            throw new RecipeConfigException($"gradient_accumulation_steps: must be >= 1, got {cfg.GradientAccumulationSteps}");
        if (cfg.MaxSteps < 0) throw new RecipeConfigException($"max_steps: must be >= 0, got {cfg.MaxSteps}");
        _ctx = ctx;
        _model = model;
        Config = cfg;
        _guard = new NonFiniteGuard(cfg.MaxConsecutiveNonfinite);
        Parallel = new DataParallel(Dist.ForDevice(ModelDevice(model), cfg.Distributed.EngineBackend));
        if (Parallel.Size > 1 && !dataParallel)   // its batches are not sharded: summed gradients would be Size times too big
            throw new RecipeConfigException($"recipe {cfg.Recipe}: data-parallel runs ({Parallel.Size} ranks) are supported by sft, rm and grpo; run it as one process");
        if (cfg.Distributed.ExpertParallel > 1 && model.ExpertParallel is null)
            throw new RecipeConfigException($"distributed.expert_parallel: recipe {cfg.Recipe} does not build expert-parallel models (sft and grpo do); set it to 1");
        if (!Parallel.IsMain) Parallel.Group.Barrier();        // rank 0 first removes a killed run's leftovers
        Checkpoints = new CheckpointManager(cfg.OutputDir, cfg.Checkpoint.KeepLast);   // removes a killed run's leftovers
        if (Parallel.IsMain) Parallel.Group.Barrier();
        Optimizer = new DataParallelOptimizer(Parallel.Group, model.Module.named_parameters().Select(p => (p.name, p.parameter)).ToList(),
            cfg.Distributed.Stage, named => Optimizers.Create(cfg.Optimizer, named, fusedAdamW), cfg.Distributed.BucketElements, model.ExpertParallel);
        if (cfg.Distributed.Overlap && !fusedAdamW && FindCausalLM(model.Module) is { } lm   // the fast path sums between its bodies
            && Optimizer.EnableOverlap(lm.LayerParameters(), cfg.GradientAccumulationSteps) is { } marker)
        {
            lm.LayerInputMarker = marker;
            Output.WriteLine($"data parallel: {Optimizer.OverlappedBucketCount} gradient buckets of {lm.LayerParameters().Count} decoder layers all-reduced during backward");
        }
        SetRecompute(cfg, model);
        Schedule = LrSchedules.FromConfig(cfg.Scheduler, cfg.Optimizer.Lr, cfg.MaxSteps);
        try
        {
            if (cfg.Ema is { } ema)
            {
                if (model.SaveState is null) throw new RecipeConfigException($"ema: recipe {cfg.Recipe} with this model (LoRA adapters, or experts split by distributed.expert_parallel) has no full weights to average");
                if (ema.Every < 1) throw new RecipeConfigException($"ema.every: must be >= 1, got {ema.Every}");
                if (ema.Decay is < 0 or >= 1) throw new RecipeConfigException($"ema.decay: must be in [0, 1), got {ema.Decay}");
                _ema = new HostEma(model.Module.named_parameters().Select(p => (p.name, (Tensor)p.parameter)), ema.Decay) { SkipWhenBusy = ema.SkipWhenBusy };
            }
            ResumedFrom = cfg.Checkpoint.Resume ? Checkpoints.FindLatest() : null;
            if (ResumedFrom is not null) Resume(ResumedFrom);
            if (Parallel.IsMain) Metrics = new MetricsLogger(cfg.OutputDir, cfg.Logging.Tensorboard, resumedFromStep: ResumedFrom?.Step);
            ReportSetupMemory(model.Module);
        }
        catch
        {
            _ema?.Dispose();
            Optimizer.Dispose();
            throw;
        }
    }

    /// <summary>On CUDA: the memory the run holds before its first step and the peak while loading and converting the
    /// model, then the allocator's peak is reset, so memory/gpu_peak_gb is the training steps' own peak.</summary>
    private void ReportSetupMemory(nn.Module module)
    {
        var p = module.parameters().FirstOrDefault();
        if (p is null || p.device_type != DeviceType.CUDA || PostTrain.Core.Runtime.CudaMemory.Read(p.device_index, out _) is not { } m) return;
        Output.WriteLine($"gpu memory after setup: {m.AllocatedBytes / 1e9:F2} GB allocated, peak while loading {m.PeakAllocatedBytes / 1e9:F2} GB " +
            "(memory/gpu_peak_gb counts from the first step)");
        PostTrain.Core.Runtime.CudaMemory.ResetPeak(p.device_index);
    }

    /// <summary>Builds the optimizer and schedule, and resumes from the run directory's latest checkpoint when the
    /// config allows (model weights, optimizer, trainer state, torch RNG), checking the config did not change.</summary>
    /// <param name="dataParallel">The recipe shards its batches with Parallel (required to run as several ranks).</param>
    /// <param name="fusedAdamW">The recipe trains through the fast path (FastTrainStep): AdamW is built fused (same state).</param>
    public static TrainingRun Start(RecipeContext ctx, TrainerConfig cfg, RunModel model, bool dataParallel = false, bool fusedAdamW = false) =>
        new(ctx, cfg, model, dataParallel, fusedAdamW);

    public bool Done => State.Step >= Config.MaxSteps;

    /// <summary>The schedule's learning rate for the step about to run.</summary>
    public double LearningRate => Schedule.At(State.Step);

    public IProgressReporter CreateProgress(ProgressLabels? labels = null) =>
        Parallel.Progress(() => _ctx.CreateProgress(Config.Logging, Config.MaxSteps, State.Step, labels));

    /// <summary>The run's log: rank 0's log, nothing on the other ranks.</summary>
    public TextWriter Output => Parallel.Log(_ctx.Log);

    /// <summary>Sets the learning rate and zeroes the gradients before the step's forward/backward passes, and opens the
    /// step's FP8 weight window (each FP8 weight is quantised once for all of the step's passes; Update closes it).</summary>
    public void BeginStep(double lr)
    {
        Optimizer.LearningRate = lr;
        Optimizer.ZeroGrad();
        _fp8Weights?.Dispose();
        _fp8Weights = Fp8WeightCache.Open();
    }

    /// <summary>After the step's backward passes: a finite <paramref name="loss"/> clips the gradient norm (clip_grad_norm)
    /// and steps the optimizer; a non-finite one skips the step (and stops the run after max_consecutive_nonfinite in a
    /// row). Gradients are zeroed either way.</summary>
    public UpdateResult Update(double loss)
    {
        _fp8Weights?.Dispose();                                  // before the optimizer changes the weights
        _fp8Weights = null;
        var result = new UpdateResult(false, double.NaN);
        if (_guard.Check(loss, State.Step) == LossVerdict.Continue)
        {
            // gradients summed over the ranks first (nothing to sum in one process), then clipped by the global norm
            _ema?.BeforeWeightsChange();
            double norm = Optimizer.Step(ps => Config.ClipGradNorm is double max ? nn.utils.clip_grad_norm_(ps, max) : GradNorm(ps), Config.ClipGradNorm);
            result = new UpdateResult(true, norm);
            if (_ema is not null && (State.Step + 1) % Config.Ema!.Every == 0) _ema.Update();
        }
        if (ReleaseGradients) ReleaseGradientMemory();
        else Optimizer.ZeroGrad();
        return result;
    }

    /// <summary>After each update, free the gradients (set to none) instead of zeroing them in place, so the memory they
    /// hold between steps (32 GB for a 16B model in bf16) is free for the next rollouts; backward allocates them again.
    /// For one process on the plain step only (data parallel's buckets and the fast path's captured step keep gradient
    /// addresses).</summary>
    public bool ReleaseGradients { get; set; }

    private void ReleaseGradientMemory()
    {
        foreach (var p in Optimizer.Parameters)
        {
            var g = p.grad;
            if (g is null) continue;
            p.grad = null;
            g.Dispose();
        }
    }

    /// <summary>The fast paths call this before a device step that updates the weights (the plain path's Update does it
    /// itself): the EMA's side-stream copy of the previous weights must have read them first.</summary>
    public void BeforeWeightsChange() => _ema?.BeforeWeightsChange();

    /// <summary>The fast path's bookkeeping for a step that already ran on the device (FastTrainStep with SkipNonFinite:
    /// a non-finite loss or gradient norm left the weights and the optimizer state unchanged there): the same NaN guard
    /// counting and EMA update as Update, nothing stepped here.</summary>
    public UpdateResult UpdateRecorded(double loss, double gradNorm)
    {
        if (_guard.Check(double.IsFinite(gradNorm) ? loss : double.NaN, State.Step) != LossVerdict.Continue)
            return new UpdateResult(false, double.NaN);
        if (_ema is not null && (State.Step + 1) % Config.Ema!.Every == 0) _ema.Update();
        return new UpdateResult(true, gradNorm);
    }

    /// <summary>`recompute:` on the decoder the run trains (its training forwards recompute; the recipe's other models and
    /// its forwards without autograd do not).</summary>
    private void SetRecompute(TrainerConfig cfg, RunModel model)
    {
        if (cfg.Recompute == RecomputeMode.None) return;
        string mode = cfg.Recompute.ToString().ToLowerInvariant();
        var lm = model.Decoder ?? FindCausalLM(model.Module)
            ?? throw new RecipeConfigException($"recompute: {mode}, but recipe {cfg.Recipe} trains no decoder model; set recompute: none");
        try { lm.Recompute = cfg.Recompute; }
        catch (ArgumentException e) { throw new RecipeConfigException(e.Message); }
        Output.WriteLine($"recompute: {mode}: " + (cfg.Recompute == RecomputeMode.Layer
            ? "each decoder layer keeps only its input for backward and runs again there"
            : "RMSNorms and MLA up-projections (with the attention core) run again in backward"));
    }

    /// <summary>The decoder model inside the run's module (itself, or wrapped by a reward head or adapters), if any.</summary>
    private static DeepSeekForCausalLM? FindCausalLM(nn.Module module) =>
        module as DeepSeekForCausalLM ?? module.modules().OfType<DeepSeekForCausalLM>().FirstOrDefault();

    /// <summary>The device of the model's first parameter (CPU for a model without parameters).</summary>
    private static Device ModelDevice(RunModel model)
    {
        foreach (var p in model.Module.parameters()) return p.device;
        return CPU;
    }

    /// <summary>The global L2 norm of the gradients (no clipping).</summary>
    private static double GradNorm(IReadOnlyList<TorchSharp.Modules.Parameter> ps)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        return stack(ps.Select(p => p.grad!.to(ScalarType.Float32).norm()).ToArray()).norm().item<float>();
    }

    /// <summary>Marks a step done: step + 1, tokens seen, the learning rate it used.</summary>
    public void Advance(double lr, long tokens = 0) =>
        State = State with { Step = State.Step + 1, TokensSeen = State.TokensSeen + tokens, LearningRate = lr };

    /// <summary>Whether the step just finished writes metrics (every logging.every_n_steps and the last).</summary>
    public bool LogDue => State.Step % Config.Logging.EveryNSteps == 0 || State.Step == Config.MaxSteps;

    /// <summary>Whether the step just finished saves a checkpoint (every checkpoint.every_n_steps and the last).</summary>
    public bool CheckpointDue => Config.Checkpoint.Enabled && (
        (Config.Checkpoint.EveryNSteps > 0 && State.Step % Config.Checkpoint.EveryNSteps == 0) || State.Step == Config.MaxSteps);

    public void Log(params (string Name, double Value)[] values) => Metrics?.Log(State.Step, [.. values, .. MemoryMetrics()]);

    /// <summary>Peak memory so far: memory/host_peak_gb (the process's peak working set) and, on CUDA,
    /// memory/gpu_peak_gb (the caching allocator's peak allocated bytes, when native/cudagraph is loaded).</summary>
    private IEnumerable<(string, double)> MemoryMetrics()
    {
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        yield return ("memory/host_peak_gb", self.PeakWorkingSet64 / 1e9);
        var p = Optimizer.Parameters.FirstOrDefault();
        if (p is not null && p.device_type == DeviceType.CUDA && PostTrain.Core.Runtime.CudaMemory.Read(p.device_index, out _) is { } mem)
            yield return ("memory/gpu_peak_gb", mem.PeakAllocatedBytes / 1e9);
    }

    /// <summary>Metrics at a given step (evaluation at step 0, ...): rank 0 writes them.</summary>
    public void LogAt(long step, params (string Name, double Value)[] values) => Metrics?.Log(step, values);

    /// <summary>Checkpoint State.Step: model/ (with tokenizer files), optimizer state, resolved config, trainer state
    /// with the torch RNG. Atomic: a crash leaves the previous checkpoint as it was.</summary>
    public CheckpointInfo SaveCheckpoint()
    {
        var state = State with { TorchRngState = TorchRng.Capture() };
        if (Parallel.Size > 1 && _model.ExpertParallel is null)   // plain data parallel: each rank writes its share
            return DistributedCheckpoint.Save(Checkpoints, Optimizer, Sharded, state, dir => WriteShared(dir, experts: null));
        if (_model.ExpertParallel is { } ep) return SaveExpertParallel(ep, state);
        using var scope = NewDisposeScope();
        var opt = Optimizer.StateDict();   // one process: the optimizer's own state
        try
        {
            return Checkpoints.Save(state, dir =>
            {
                WriteShared(dir, experts: null);
                if (opt.Count > 0) SafeTensors.Save(Path.Combine(dir, OptimizerFileName), opt.ToDictionary(kv => kv.Key, kv => kv.Value.cpu()));
            });
        }
        finally { foreach (var t in opt.Values) t.Dispose(); }
    }

    // model/ (with tokenizer files), the resolved config and the EMA: what every kind of checkpoint holds
    private void WriteShared(string dir, ExpertGatherStream? experts)
    {
        var model = Path.Combine(dir, ModelDirName);
        var tokenizer = ModelSetup.TokenizerFiles(_model.TokenizerDir);
        if (experts is null) _model.Save(model, tokenizer);
        else _model.SaveStreamed!(model, tokenizer, experts);
        AtomicFile.WriteAllText(Path.Combine(dir, RecipeRunner.ResolvedConfigFileName), _ctx.ResolvedYaml);
        if (_ema is not null) SafeTensors.Save(Path.Combine(dir, EmaFileName), _ema.Values());
    }

    // Expert parallel, in the single-process format: the optimizer's replicated part whole and the experts' moments as
    // each rank's rows (collective over the world); then rank 0 writes model/ and the optimizer file, gathering every
    // expert stack (weights, then moments) from its EP group as the file writer reaches it (ExpertGatherStream: at
    // most 3 gathered stacks on its host), while the group's other ranks serve those gathers.
    private CheckpointInfo SaveExpertParallel(ExpertParallelism ep, TrainerState state)
    {
        using var scope = NewDisposeScope();
        var opt = Optimizer.StateDictExpertsLocal();
        var saved = new CheckpointInfo(State.Step, Path.Combine(Checkpoints.RunDir, CheckpointManager.DirName(State.Step)), state);
        try
        {
            var stacks = new Dictionary<string, Tensor>(_model.ExpertStacks!(), StringComparer.Ordinal);
            foreach (var (key, t) in opt.Where(kv => ExpertParallelCheckpoint.IsExpert(kv.Key) && kv.Value.dim() > 0)) stacks.Add(key, t);
            WriteGatheringExperts(ep, stacks, experts => saved = Checkpoints.Save(state, dir =>
            {
                WriteShared(dir, experts);
                SaveOptimizerStreamed(Path.Combine(dir, OptimizerFileName), opt, experts, ep.Size);
            }));
        }
        finally { foreach (var t in opt.Values) t.Dispose(); }
        Parallel.Group.Barrier();                 // the checkpoint exists before any rank goes on
        return saved;
    }

    // Rank 0 runs `write` with a stream over `stacks` (this rank's rows of each, by name) while the other ranks of its
    // EP group (ranks 0..P-1) serve the gathers it asks for; the other EP groups take no part. Returns on every rank.
    private void WriteGatheringExperts(ExpertParallelism ep, IReadOnlyDictionary<string, Tensor> stacks, Action<ExpertGatherStream> write)
    {
        if (Parallel.Group.Rank >= ep.Size) return;
        using var experts = new ExpertGatherStream(ep.Experts, stacks);
        if (!experts.IsWriter)
        {
            experts.Serve();
            return;
        }
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try { write(experts); }
        finally { experts.Finish(); }   // the serving ranks return even when the save failed
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        Output.WriteLine($"expert parallel save: {experts.Gathers} expert stacks gathered from {ep.Size} ranks one at a time, " +
            $"at most {experts.MostHeld} held on this host ({clock.Elapsed.TotalSeconds:F1} s; process peak {self.PeakWorkingSet64 / 1e9:F2} GB)");
    }

    // The optimizer file of an expert-parallel run: expert moments (this rank's rows in `opt`) gathered one stack at a
    // time through the stream, everything else as it is.
    private static void SaveOptimizerStreamed(string file, Dictionary<string, Tensor> opt, ExpertGatherStream experts, int epSize)
    {
        static bool Stacked(string key, Tensor t) => ExpertParallelCheckpoint.IsExpert(key) && t.dim() > 0;
        var layout = opt.ToDictionary(kv => kv.Key, kv => Stacked(kv.Key, kv.Value) ? ExpertParallelCheckpoint.WholeMeta(kv.Value, epSize) : kv.Value);
        SafeTensors.SaveStreaming(file, layout, key => Stacked(key, opt[key]) ? experts.Get(key) : opt[key]);
    }

    /// <summary>Writes the trained model to &lt;output_dir&gt;/final with the tokenizer files; returns its path.</summary>
    public string SaveFinal()
    {
        string final = Path.Combine(Config.OutputDir, FinalDirName);
        if (!Config.Checkpoint.Enabled)
        {
            Output.WriteLine("checkpoint.enabled: false: no final model written");
            if (Parallel.IsMain && _ema is not null) Output.WriteLine(EmaTimings() + " (not saved: checkpoint.enabled: false)");
            return final;
        }
        var tokenizer = ModelSetup.TokenizerFiles(_model.TokenizerDir);
        if (_model.ExpertParallel is { } ep) WriteGatheringExperts(ep, _model.ExpertStacks!(), experts => _model.SaveStreamed!(final, tokenizer, experts));
        else if (Parallel.IsMain) _model.Save(final, tokenizer);
        if (Parallel.IsMain && _ema is not null) SaveEma();
        Parallel.Group.Barrier();
        return final;
    }

    /// <summary>&lt;output_dir&gt;/ema: the averaged parameters with the model's own buffers, as a model directory.</summary>
    private void SaveEma()
    {
        var values = _ema!.Values();
        var state = _model.Module.state_dict().ToDictionary(kv => kv.Key, kv => values.TryGetValue(kv.Key, out var e) ? e : kv.Value, StringComparer.Ordinal);
        _model.SaveState!(Path.Combine(Config.OutputDir, EmaDirName), state, ModelSetup.TokenizerFiles(_model.TokenizerDir));
        Output.WriteLine(EmaTimings() + $"; saved {Path.Combine(Config.OutputDir, EmaDirName)}");
    }

    /// <summary>The EMA's updates and where its time went (training thread: copying, waiting; background averaging); the
    /// background task is waited for first, so its seconds are complete.</summary>
    private string EmaTimings()
    {
        _ema!.Values();
        return $"ema: {_ema.Updates} updates (decay {_ema.Decay}" + (_ema.SkipWhenBusy ? $", {_ema.Skipped} skipped while busy" : "") +
            $"; copy on the {_ema.CopyMode}); training thread: {_ema.CopySeconds:F2} s copying or queuing the copy, {_ema.WaitSeconds:F2} s waiting; " +
            $"background: {_ema.TransferSeconds:F2} s waiting for the copy, {_ema.UpdateSeconds:F2} s averaging";
    }

    private void Resume(CheckpointInfo ck)
    {
        ResumeCheck.Verify(ck, Config, _ctx.ResolvedYaml);
        _model.LoadWeights(Path.Combine(ck.Directory, ModelDirName));
        var optFile = Path.Combine(ck.Directory, OptimizerFileName);
        if (DistCheckpointReader.IsCommitted(ck.Directory))
            DistributedCheckpoint.Load(ck.Directory, Optimizer, Sharded);
        else if (File.Exists(optFile))
        {
            var mine = Optimizer.OwnedNames.Select(n => n + ".").ToList();   // this rank's entries only (ZeRO 1/2)
            // host tensors: the optimizer copies them where its state lives (the device, or the host when offloaded);
            // expert parallel: each expert stack's moments cut to this rank's rows as they are read, one stack at a time
            var ep = _model.ExpertParallel;
            Func<string, Tensor, Tensor>? slice = ep is null ? null
                : (k, t) => ExpertParallelCheckpoint.IsExpert(k) && t.dim() > 0 ? ExpertParallelCheckpoint.Slice(ep.Experts, t).clone() : t;
            var opt = SafeTensors.Load(optFile, new SafeTensorsLoadOptions { Filter = k => mine.Any(n => k.StartsWith(n, StringComparison.Ordinal)), Transform = slice });
            try { Optimizer.LoadStateDict(opt, expertsSliced: ep is not null); }
            finally { foreach (var t in opt.Values) t.Dispose(); }
        }
        else if (Optimizer.StateDict() is { Count: > 0 } expected)
        {
            foreach (var t in expected.Values) t.Dispose();
            throw new InvalidDataException($"{ck.Directory}: {OptimizerFileName} is missing");
        }
        if (_ema is not null)
        {
            var emaFile = Path.Combine(ck.Directory, EmaFileName);
            if (!File.Exists(emaFile)) throw new InvalidDataException($"{ck.Directory}: {EmaFileName} is missing (was the run started without ema:?)");
            var saved = SafeTensors.Load(emaFile);
            try { _ema.Load(saved, emaFile); }
            finally { foreach (var t in saved.Values) t.Dispose(); }
        }
        State = ck.State with { TorchRngState = null };
        if (ck.State.TorchRngState is { } torchRng) TorchRng.Restore(torchRng);
        Output.WriteLine($"resumed from {ck.Directory} (step {ck.Step}, epoch {ck.State.Epoch}, data position {ck.State.DataPosition})");
    }

    public void Dispose()
    {
        _fp8Weights?.Dispose();
        Metrics?.Dispose();
        _ema?.Dispose();
        Optimizer.Dispose();
    }
}
