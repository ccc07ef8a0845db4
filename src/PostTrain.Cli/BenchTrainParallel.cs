// bench-train as several ranks (posttrain launch --nproc-per-node N bench-train ...), or with --zero / --expert-parallel:
// data-parallel training of the benchmark model with the run's own distributed classes. --batch is rows per rank; each
// step draws one global batch of N x batch rows (the single-process stream: a run of one rank with --batch N x batch
// sees the same rows) and rank r trains on rows [r batch, (r+1) batch). Each rank's loss is its cross-entropy sum over
// the global token count, so the gradients DataParallelOptimizer sums over the ranks are the global batch's gradients,
// and the summed loss is the one-process loss of the whole batch (fp32 summation order apart).
//   --zero 0|1|2:                 ZeRO stage of DataParallelOptimizer (ZeroStage).
//   --expert-parallel P:          routed experts sharded over EP groups of P ranks (ExpertParallelism); the EP model is
//                                 copied from the full model of the same init, so its losses equal data parallel's.
//   --max-devices-per-token M:    device-limited routing under expert parallelism (DeviceLimitedRouting).
// Communication is timed by TimedProcessGroup (the device is synchronised around every collective, so the timed step
// has no overlap of communication with compute): all_to_all_ms (EP dispatch/combine/counts, inside forward and
// backward), grad_sync_ms (gradient all-reduce / reduce-scatter, parameter all-gather: inside the optimizer phase),
// comm_share = (all_to_all_ms + grad_sync_ms) / step_ms. Phase times are means over ranks; the step time is the slowest
// rank's mean (it sets the job's rate): tokens_per_s = N x batch x seq / step, per GPU = that / N. Peak memory: the
// largest rank's (CUDA caching allocator peak, or host peak resident memory on the CPU). Rank 0 prints the JSON row
// (stdout) and a one-row table (stderr); the other ranks print nothing.
// --fast-path on (ZeRO 0, no expert parallelism): each rank runs the fast step (FastTrainStep: chunked head loss,
// fused AdamW; its forward+backward body captured as a CUDA graph on CUDA) on its rows, dividing by the global token
// count; between that body and the update body the gradients are summed over the ranks (DataParallelOptimizer.
// SumGradients, not captured). forward_ms is then forward + backward (one body), backward_ms 0, optimizer_ms the
// gradient sum and the update.
using System.Diagnostics;
using PostTrain.Core.Distributed;
using PostTrain.Core.Model;
using PostTrain.Core.Precision;
using PostTrain.Core.Recompute;
using PostTrain.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Cli;

internal static class BenchTrainParallel
{
    public sealed record Layout(ZeroStage Zero, int ExpertParallel, int? MaxDevicesPerToken, DistBackend Backend);

    public static Dictionary<string, object> Measure(Func<ModelConfig> make, string modelName, Precision p, int fp8MinDim, bool bf16Params, Device dev,
        int B, int T, RecomputeMode mode, Layout layout, double lr, int warmup, int steps, PostTrain.Core.FastPath.FastTrainStepOptions? fast = null,
        TextWriter? log = null)
    {
        if (fast is not null && (layout.Zero != ZeroStage.None || layout.ExpertParallel > 1))
            throw new UsageException("--fast-path on: data parallel with --zero 0 and --expert-parallel 1 only (the fast step sums the whole gradients between its bodies)");
        if (fast is not null && mode != RecomputeMode.None)
            throw new UsageException("--fast-path on: --recompute none only with several ranks");
        var cfg = make();
        void Sync() { if (dev.type == DeviceType.CUDA) cuda.synchronize(dev); }
        ProcessGroup engine;
        try { engine = Dist.ForDevice(dev, layout.Backend); }
        catch (InvalidOperationException e) when (layout.Backend == DistBackend.Nccl) { throw new UsageException("--backend: " + e.Message); }
        using var group = new TimedProcessGroup(engine, Sync);
        int W = group.Size;
        if (layout.MaxDevicesPerToken is not null && layout.ExpertParallel == 1)
            throw new UsageException("--max-devices-per-token: needs --expert-parallel P > 1 (it limits each token's experts to M of the P ranks)");
        ExpertParallelism? ep = null;
        try
        {
            if (layout.ExpertParallel > 1) ep = ExpertParallelism.Create(group, layout.ExpertParallel, layout.MaxDevicesPerToken);
        }
        catch (ArgumentException e) { throw new UsageException($"--expert-parallel: {e.Message} ({W} ranks)"); }
        using var epLayout = ep;
        using var m = BuildModel(make, p, fp8MinDim, bf16Params, dev, ep);
        m.Recompute = mode;
        using var opt = new DataParallelOptimizer(group, m.named_parameters().Select(x => (x.name, x.parameter)).ToList(), layout.Zero,
            ps => new AdamW(ps, lr, 0.9, 0.999, 1e-8, 0.0, fused: fast is not null), experts: ep);
        using var fastStep = fast is null ? null : PostTrain.Core.FastPath.FastTrainStep.Create(m, (AdamW)opt.Local, B, T, packed: false,
            PostTrain.Core.FastPath.FastPathMode.Auto, fast, group.Rank == 0 ? (log ?? TextWriter.Null).WriteLine : null, opt.SumGradients);
        int devIndex = dev.index < 0 ? 0 : dev.index;
        if (dev.type == DeviceType.CUDA) { Sync(); CudaMemory.ResetPeak(devIndex); }
        bool hostPeak = dev.type == DeviceType.CPU && HostPeakMemory.Reset();

        // fwd, bwd, opt, step, all-to-all, grad sync: sums over the measured steps (ms)
        var sums = new double[6];
        var losses = new List<double>();
        var gen = new Generator(1234);   // the single-process stream: the same global batches as one rank with batch N x B
        double globalTokens = (double)W * B * (T - 1);   // every label but each row's last counts
        for (int s = 0; s < warmup + steps; s++)
        {
            using var scope = NewDisposeScope();
            var all = randint(0, cfg.VocabSize, [W * B, T], generator: gen);                       // (W B, T)
            var ids = all.narrow(0, group.Rank * B, B).to(dev);                                      // (B, T) this rank's rows
            var labels = cat([ids.narrow(1, 1, T - 1), full(B, 1, -100L, dtype: ScalarType.Int64, device: dev)], 1);
            Sync();
            group.Reset();
            var t0 = Stopwatch.GetTimestamp();
            Tensor loss;
            long t1, t2;
            if (fastStep is not null)
            {
                fastStep.Accumulate(ids, labels, null, null, [(long)globalTokens]);
                Sync(); t1 = t2 = Stopwatch.GetTimestamp();
                loss = fastStep.Apply(lr).Loss;
            }
            else
            {
                var output = m.Forward(ids);
                var (sum, _) = Losses.CrossEntropySum(output.Logits, labels);
                loss = sum / globalTokens;
                Sync(); t1 = Stopwatch.GetTimestamp();
                loss.backward();
                Sync(); t2 = Stopwatch.GetTimestamp();
                opt.Step(); opt.ZeroGrad();
            }
            MoeBalancer.Step(m, 0.0);   // gamma 0: the counts are taken, the biases stay (as the single-process verb)
            Sync(); var t3 = Stopwatch.GetTimestamp();
            double a2a = group.AllToAllSeconds * 1e3, gsync = group.SyncSeconds * 1e3;
            losses.Add(engine.AllReduce([(double)loss.to(ScalarType.Float32).item<float>()])[0]);   // untimed: the global loss
            if (s >= warmup)
            {
                double[] phases = [Ms(t0, t1), Ms(t1, t2), Ms(t2, t3), Ms(t0, t3), a2a, gsync];
                for (int i = 0; i < sums.Length; i++) sums[i] += phases[i];
            }
        }
        var mean = engine.AllReduce(sums.Select(x => x / steps).ToArray()).Select(x => x / W).ToArray();
        double slowest = engine.AllReduce([sums[3] / steps], ReduceOp.Max)[0];
        double comm = mean[4] + mean[5];
        double tokens = Math.Round((double)W * B * T / (slowest / 1000));
        var result = new Dictionary<string, object>
        {
            ["bench"] = "posttrain_train", ["model"] = modelName, ["params"] = bf16Params ? "bf16" : "fp32", ["fast_path"] = fastStep?.Description ?? "off",
            ["device"] = dev.type == DeviceType.CUDA ? "cuda" : dev.ToString(), ["recompute"] = mode.ToString().ToLowerInvariant(),
            ["world_size"] = W, ["zero"] = (int)layout.Zero, ["expert_parallel"] = layout.ExpertParallel,
            ["max_devices_per_token"] = ep?.MaxDevicesPerToken ?? layout.ExpertParallel,
            ["engine"] = engine switch { NcclProcessGroup => "nccl", MpiProcessGroup => "mpi", _ => "single process" },
            ["batch"] = B, ["global_batch"] = W * B, ["seq"] = T,
            ["tokens_per_s"] = tokens, ["tokens_per_s_per_gpu"] = Math.Round(tokens / W, 1),
            ["step_ms"] = Math.Round(slowest, 1), ["forward_ms"] = Math.Round(mean[0], 1), ["backward_ms"] = Math.Round(mean[1], 1),
            ["optimizer_ms"] = Math.Round(mean[2], 1), ["all_to_all_ms"] = Math.Round(mean[4], 2), ["grad_sync_ms"] = Math.Round(mean[5], 2),
            ["comm_ms"] = Math.Round(comm, 2), ["comm_share"] = Math.Round(comm / mean[3], 4), ["all_to_all_share"] = Math.Round(mean[4] / mean[3], 4),
            ["loss"] = losses[^1], ["losses"] = losses.Select(l => Math.Round(l, 6)).ToArray(),
            ["parameters_m"] = Math.Round(m.ParameterCount() / 1e6, 1),
        };
        if (dev.type == DeviceType.CUDA && CudaMemory.Read(devIndex, out _) is { } mem)
            result["peak_gib"] = Math.Round(engine.AllReduce([mem.PeakAllocatedBytes / (double)(1L << 30)], ReduceOp.Max)[0], 2);
        if (dev.type == DeviceType.CPU)
        {
            double rss = hostPeak && HostPeakMemory.PeakBytes() is long b ? b / (double)(1L << 30) : -1;
            double max = engine.AllReduce([rss], ReduceOp.Max)[0];
            if (max >= 0) result["host_peak_gib"] = Math.Round(max, 3);
        }
        return result;
    }

    /// <summary>The one-row table rank 0 prints (header included).</summary>
    public static string Table(Dictionary<string, object> r)
    {
        string peakKey = r.ContainsKey("peak_gib") ? "peak_gib" : "host_peak_gib";
        return string.Join('\n',
            $"| model | ranks | zero | EP (max devices) | tokens/s | tokens/s/GPU | step ms (fwd / bwd / opt) | comm ms (all-to-all / grad sync) | comm share | {(peakKey == "peak_gib" ? "peak GiB/rank" : "host peak GiB/rank")} | loss |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            $"| {r["model"]} | {r["world_size"]} | {r["zero"]} | {r["expert_parallel"]} ({r["max_devices_per_token"]}) | {r["tokens_per_s"]:N0} | {r["tokens_per_s_per_gpu"]:N0} | " +
            $"{r["step_ms"]} ({r["forward_ms"]} / {r["backward_ms"]} / {r["optimizer_ms"]}) | {r["comm_ms"]} ({r["all_to_all_ms"]} / {r["grad_sync_ms"]}) | " +
            $"{(double)r["comm_share"]:P1} | {(r.TryGetValue(peakKey, out var pk) ? pk : "-")} | {(double)r["loss"]:F5} |");
    }

    /// <summary>The benchmark model of BenchTrainVerb (same init); with expert parallelism, this rank's slice of it: the
    /// full model is built from the same seed and copied (replicated parameters by name, each MoE layer's router, shared
    /// experts and this rank's experts by ExpertParallelMoE.LoadFrom).</summary>
    private static DeepSeekForCausalLM BuildModel(Func<ModelConfig> make, Precision p, int fp8MinDim, bool bf16Params, Device dev, ExpertParallelism? ep)
    {
        if (ep is null) return BenchTrainVerb.Build(make, p, fp8MinDim, bf16Params, dev);
        using var full = BenchTrainVerb.Build(make, p, fp8MinDim, bf16Params, dev);
        DeepSeekForCausalLM m;
        try { m = new DeepSeekForCausalLM(make(), dev, ep); }
        catch (ArgumentException e) { throw new UsageException($"--expert-parallel: {e.Message}"); }
        m.SetPrecision(p, fp8MinDim);
        if (bf16Params) m.to(ScalarType.BFloat16);
        using (no_grad())
        {
            var source = full.named_parameters().ToDictionary(x => x.name, x => x.parameter);
            foreach (var (name, param) in m.named_parameters())
                if (!ExpertParallelCheckpoint.IsExpert(name)) param.copy_(source[name]);
            foreach (var (mine, theirs) in m.MoeLayers().Zip(full.MoeLayers()))
                ((ExpertParallelMoE)mine).LoadFrom((MoE)theirs);
        }
        m.train();
        return m;
    }

    private static double Ms(long a, long b) => (b - a) * 1000.0 / Stopwatch.Frequency;
}
