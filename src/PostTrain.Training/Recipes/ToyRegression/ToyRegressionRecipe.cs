// toy_regression: fits y = x.w + b on a synthetic data set with a one-layer model, on the CPU in seconds.
// It is the worked example of the training infrastructure every trainer reuses: LR schedule, NaN guard,
// gradient clipping, metrics.jsonl + TensorBoard, progress, checkpoints with exact resume (host Rng state at
// the start of the epoch + data position, torch RNG, optimizer state). Simplification: one device (CPU).
using PostTrain.Training.Infra;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PostTrain.Training.Recipes;

public sealed class ToyRegressionRecipe(ToyRegressionConfig cfg) : IRecipe
{
    private Linear _model = null!;
    private OptimizerHelper _optimizer = null!;
    private Tensor _x = null!, _y = null!;         // (N, F), (N, 1): the data set, owned for the whole run
    private ILrSchedule _schedule = null!;
    private CheckpointManager _checkpoints = null!;
    private MetricsLogger _metrics = null!;
    private Rng _rng = null!;
    private ulong[] _epochStartRng = [];
    private long[] _order = [];
    private TrainerState _state = new();

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
        if (cfg.BatchSize * cfg.GradientAccumulationSteps > cfg.DatasetSize)
            throw new RecipeConfigException($"batch_size * gradient_accumulation_steps: must be <= dataset_size ({cfg.DatasetSize}), got {cfg.BatchSize * cfg.GradientAccumulationSteps}");
        MakeData();
        torch.manual_seed(cfg.Seed);
        _model = nn.Linear(cfg.Features, 1);
        var o = cfg.Optimizer;
        _optimizer = o.Name == OptimizerKind.AdamW
            ? optim.AdamW(_model.parameters(), o.Lr, o.Betas[0], o.Betas[1], o.Eps, o.WeightDecay)
            : optim.SGD(_model.parameters(), o.Lr, weight_decay: o.WeightDecay);
        _schedule = LrSchedules.FromConfig(cfg.Scheduler, o.Lr, cfg.MaxSteps);
        _checkpoints = new CheckpointManager(cfg.OutputDir, cfg.Checkpoint.KeepLast);
        _rng = new Rng(cfg.Seed + 1);
        StartEpoch(0);

        var resume = cfg.Checkpoint.Resume ? _checkpoints.FindLatest() : null;
        if (resume is not null) LoadCheckpoint(resume, ctx);
        _metrics = new MetricsLogger(cfg.OutputDir, cfg.Logging.Tensorboard, resumedFromStep: resume?.Step);
    }

    /// <summary>Features ~ U(-1, 1), true weights ~ U(-1, 1), labels = x.w + 0.5 + noise; all from the seed.</summary>
    private void MakeData()
    {
        var data = new Rng(cfg.Seed);
        int n = cfg.DatasetSize, f = cfg.Features;
        var w = Enumerable.Range(0, f).Select(_ => data.NextDouble() * 2 - 1).ToArray();
        var x = new float[n * f];
        var y = new float[n];
        for (int i = 0; i < n; i++)
        {
            double dot = 0.5;
            for (int j = 0; j < f; j++)
            {
                x[i * f + j] = (float)(data.NextDouble() * 2 - 1);
                dot += x[i * f + j] * w[j];
            }
            y[i] = (float)(dot + cfg.LabelNoise * Gaussian(data));
        }
        _x = torch.tensor(x, [n, f]);
        _y = torch.tensor(y, [n, 1]);
    }

    private static double Gaussian(Rng r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    /// <summary>The epoch's sample order comes from the host Rng; its state here is what a checkpoint saves.</summary>
    private void StartEpoch(int epoch)
    {
        _epochStartRng = _rng.State;
        _order = Enumerable.Range(0, cfg.DatasetSize).Select(i => (long)i).ToArray();
        _rng.Shuffle(_order);
        _state = _state with { Epoch = epoch, DataPosition = 0 };
    }

    private void Train(RecipeContext ctx, CancellationToken ct)
    {
        var guard = new NonFiniteGuard(cfg.MaxConsecutiveNonfinite);
        using var progress = ctx.CreateProgress(cfg.Logging, cfg.MaxSteps, _state.Step);
        while (_state.Step < cfg.MaxSteps)
        {
            ct.ThrowIfCancellationRequested();
            int samples = cfg.BatchSize * cfg.GradientAccumulationSteps;
            if (_state.DataPosition + samples > cfg.DatasetSize) StartEpoch(_state.Epoch + 1);
            double lr = _schedule.At(_state.Step);
            var (loss, gradNorm) = Step(lr, guard);

            _state = _state with
            {
                Step = _state.Step + 1,
                DataPosition = _state.DataPosition + samples,
                TokensSeen = _state.TokensSeen + samples,
                LearningRate = lr,
            };
            if (_state.Step % cfg.Logging.EveryNSteps == 0 || _state.Step == cfg.MaxSteps)
                _metrics.Log(_state.Step, ("loss", loss), ("lr", lr), ("grad_norm", gradNorm));
            progress.Update(_state.Step, loss, samples);
            bool periodic = cfg.Checkpoint.EveryNSteps > 0 && _state.Step % cfg.Checkpoint.EveryNSteps == 0;
            if (periodic || _state.Step == cfg.MaxSteps)
                progress.Message($"saved {SaveCheckpoint(ctx).Directory}");
        }
    }

    /// <summary>One optimizer step over gradient_accumulation_steps micro-batches; a non-finite loss skips the update.
    /// Returns the mean micro-batch loss.</summary>
    private (double Loss, double GradNorm) Step(double lr, NonFiniteGuard guard)
    {
        using var scope = torch.NewDisposeScope();
        foreach (var g in _optimizer.ParamGroups) g.LearningRate = lr;
        _optimizer.zero_grad();
        int accum = cfg.GradientAccumulationSteps;
        var total = torch.zeros(1);
        for (int k = 0; k < accum; k++)
        {
            int start = (int)_state.DataPosition + k * cfg.BatchSize;
            var idx = torch.tensor(_order.AsSpan(start, cfg.BatchSize).ToArray());
            var x = _x.index_select(0, idx);                                               // (B, F)
            x = x + cfg.InputNoise * torch.randn_like(x);
            var loss = nn.functional.mse_loss(_model.forward(x), _y.index_select(0, idx)) / accum; // ()
            loss.backward();
            total += loss.detach();
        }
        double value = total.item<float>();
        double gradNorm = double.NaN;
        if (guard.Check(value, _state.Step) == LossVerdict.Continue)
        {
            gradNorm = cfg.ClipGradNorm is double max
                ? nn.utils.clip_grad_norm_(_model.parameters(), max)
                : GradNorm();
            _optimizer.step();
        }
        _optimizer.zero_grad();
        return (value, gradNorm);
    }

    private double GradNorm()
    {
        double sum = 0;
        foreach (var p in _model.parameters())
            if (p.grad is { } g) sum += g.pow(2).sum().item<float>();
        return Math.Sqrt(sum);
    }

    private CheckpointInfo SaveCheckpoint(RecipeContext ctx)
    {
        var state = _state with { Rng = _epochStartRng, TorchRngState = TorchRng.Capture() };
        return _checkpoints.Save(state, dir =>
        {
            _model.save(Path.Combine(dir, "model.bin"));
            _optimizer.save_state_dict(Path.Combine(dir, "optimizer.bin"));
            File.WriteAllText(Path.Combine(dir, RecipeRunner.ResolvedConfigFileName), ctx.ResolvedYaml);
        });
    }

    private void LoadCheckpoint(CheckpointInfo ck, RecipeContext ctx)
    {
        _model.load(Path.Combine(ck.Directory, "model.bin"));
        _optimizer.load_state_dict(Path.Combine(ck.Directory, "optimizer.bin"));
        _rng = Rng.FromState(ck.State.Rng ?? throw new InvalidDataException($"{ck.Directory}: trainer_state.json has no rng"));
        StartEpoch(ck.State.Epoch);
        _state = ck.State with { Rng = null, TorchRngState = null };
        if (ck.State.TorchRngState is { } torchRng) TorchRng.Restore(torchRng);
        ctx.Log.WriteLine($"resumed from {ck.Directory} (step {ck.Step}, epoch {ck.State.Epoch}, data position {ck.State.DataPosition})");
    }

    private void Cleanup()
    {
        _metrics?.Dispose();
        _optimizer?.Dispose();
        _model?.Dispose();
        _x?.Dispose();
        _y?.Dispose();
    }
}
