// toy_regression: fits y = x.w + b on a synthetic data set with a one-layer model, on the CPU in seconds.
// It is the worked example of the training-run core every trainer composes (TrainingRun): LR schedule, NaN guard,
// gradient clipping, metrics.jsonl + TensorBoard, progress, checkpoints with exact resume (host Rng state at
// the start of the epoch + data position, torch RNG, optimizer state). Simplification: one device (CPU).
using PostTrain.Training.Infra;
using PostTrain.Training.Run;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PostTrain.Training.Recipes;

public sealed class ToyRegressionRecipe(ToyRegressionConfig cfg) : IRecipe
{
    private Linear _model = null!;
    private Tensor _x = null!, _y = null!;         // (N, F), (N, 1): the data set, owned for the whole run
    private TrainingRun _run = null!;
    private Rng _rng = null!;
    private long[] _order = [];

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
        _run = TrainingRun.Start(ctx, cfg, new RunModel(_model,
            (dir, _) => { Directory.CreateDirectory(dir); _model.save(Path.Combine(dir, "model.bin")); },
            dir => _model.load(Path.Combine(dir, "model.bin")), TokenizerDir: null));
        if (_run.ResumedFrom is { } ck)
        {
            // the epoch's order is replayed from the host Rng state saved at its start
            _rng = Rng.FromState(ck.State.Rng ?? throw new InvalidDataException($"{ck.Directory}: trainer_state.json has no rng"));
            StartEpoch(ck.State.Epoch, ck.State.DataPosition);
        }
        else
        {
            _rng = new Rng(cfg.Seed + 1);
            StartEpoch(0, 0);
        }
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
    private void StartEpoch(int epoch, long position)
    {
        _run.State = _run.State with { Epoch = epoch, DataPosition = position, Rng = _rng.State };
        _order = Enumerable.Range(0, cfg.DatasetSize).Select(i => (long)i).ToArray();
        _rng.Shuffle(_order);
    }

    private void Train(RecipeContext ctx, CancellationToken ct)
    {
        using var progress = _run.CreateProgress();
        while (!_run.Done)
        {
            ct.ThrowIfCancellationRequested();
            int samples = cfg.BatchSize * cfg.GradientAccumulationSteps;
            if (_run.State.DataPosition + samples > cfg.DatasetSize) StartEpoch(_run.State.Epoch + 1, 0);
            double lr = _run.LearningRate;
            var (loss, gradNorm) = Step(lr);
            _run.State = _run.State with { DataPosition = _run.State.DataPosition + samples };
            _run.Advance(lr, samples);
            if (_run.LogDue) _run.Log(("loss", loss), ("lr", lr), ("grad_norm", gradNorm));
            progress.Update(_run.State.Step, loss, samples);
            if (_run.CheckpointDue) progress.Message($"saved {_run.SaveCheckpoint().Directory}");
        }
    }

    /// <summary>One optimizer step over gradient_accumulation_steps micro-batches; a non-finite loss skips the update.
    /// Returns the mean micro-batch loss.</summary>
    private (double Loss, double GradNorm) Step(double lr)
    {
        using var scope = torch.NewDisposeScope();
        _run.BeginStep(lr);
        int accum = cfg.GradientAccumulationSteps;
        var total = torch.zeros(1);
        for (int k = 0; k < accum; k++)
        {
            int start = (int)_run.State.DataPosition + k * cfg.BatchSize;
            var idx = torch.tensor(_order.AsSpan(start, cfg.BatchSize).ToArray());
            var x = _x.index_select(0, idx);                                               // (B, F)
            x = x + cfg.InputNoise * torch.randn_like(x);
            var loss = nn.functional.mse_loss(_model.forward(x), _y.index_select(0, idx)) / accum; // ()
            loss.backward();
            total += loss.detach();
        }
        double value = total.item<float>();
        var update = _run.Update(value);
        return (value, update.GradNorm);
    }

    private void Cleanup()
    {
        _run?.Dispose();
        _model?.Dispose();
        _x?.Dispose();
        _y?.Dispose();
    }
}
