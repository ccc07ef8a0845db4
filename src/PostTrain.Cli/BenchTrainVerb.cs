// posttrain bench-train: training throughput of a built-in benchmark model (bench-moe: shared/bench/bench-moe.json,
// 274 M parameters, 8 x 1024; bench-moe-large: shared/bench/bench-moe-large.json, 2.5 B, 4 x 2048) with its stated
// step: AdamW lr 1e-4, random token ids, next-token cross-entropy; mean of --steps steps after --warmup.
//   --fast-path off: the plain eager step (forward, full-logit CE, backward, AdamW), timed per phase.
//   --fast-path on:  FastTrainStep (fused AdamW, chunked head loss, padded attention, one CUDA graph per step).
//   --params bf16:   parameters (and so gradients and AdamW moments) stored in bf16, as the transformers baseline
//                    trains (its model is built in bf16); default fp32 master weights.
//   --self-check N:  before timing, N steps of the fast path against the plain eager step (and against itself without
//                    the graph) from the same init; prints the loss and weight differences.
//   --recompute M:   activation recompute (none, selective, layer); a comma list (none,selective,layer) measures each
//                    mode on a fresh model from the same init with the same batches, one JSON line each, then prints a
//                    table against the first (tokens/s, step split, peak memory, largest per-step loss difference).
// Peak memory is the CUDA caching allocator's peak allocated bytes (native/cudagraph), reset after each mode's model and
// optimizer are built, the measure torch.cuda.max_memory_allocated() gives the PyTorch baselines. On the CPU the
// process's peak resident memory (HostPeakMemory, reset at the same point) is reported as host_peak_gib.
// Prints one JSON line (per recompute mode) so benchmarks/run-gpu.sh can tabulate it beside transformers.
// Several ranks (posttrain launch --nproc-per-node N bench-train ...; --zero, --expert-parallel, --max-devices-per-token,
// --backend): data-parallel training, one JSON row and a table row from rank 0 (BenchTrainParallel).
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using PostTrain.Core.Distributed;
using PostTrain.Core.FastPath;
using PostTrain.Core.Model;
using PostTrain.Core.Precision;
using PostTrain.Core.Recompute;
using PostTrain.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Cli;

public sealed class BenchTrainVerb : ICliVerb
{
    public Command Build(CliIO io)
    {
        var precision = new Option<string>("--dtype") { DefaultValueFactory = _ => "bfloat16", Description = DTypeNames.List };
        var steps = new Option<int>("--steps") { DefaultValueFactory = _ => 10 };
        var warmup = new Option<int>("--warmup") { DefaultValueFactory = _ => 3 };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 0, Description = "rows (0: the model's benchmark batch)" };
        var seq = new Option<int>("--seq") { DefaultValueFactory = _ => 0, Description = "tokens per row (0: the model's benchmark length)" };
        var model = new Option<string>("--model") { DefaultValueFactory = _ => "bench-moe", Description = "built-in model name" };
        var layers = new Option<int>("--layers")
            { DefaultValueFactory = _ => 0, Description = "decoder layers (0: the model's); the same layer shapes stacked deeper, e.g. bench-moe-large --layers 12, where the LM head is no longer half the FLOPs" };
        var device = new Option<string>("--device") { DefaultValueFactory = _ => "auto" };
        var fastPath = new Option<string>("--fast-path") { DefaultValueFactory = _ => "off", Description = "off or on" };
        var paramsType = new Option<string>("--params") { DefaultValueFactory = _ => "fp32", Description = "fp32 (master weights) or bf16" };
        var graphOpt = new Option<bool>("--no-graph") { Description = "fast path without the CUDA graph" };
        var profile = new Option<string?>("--profile")
        {
            Description = "after the measured steps, trace 3 more with libtorch's Kineto profiler into this Chrome JSON (scripts/gpu/build-profiler.sh)",
        };
        var selfCheck = new Option<int>("--self-check") { DefaultValueFactory = _ => 0, Description = "steps of fast vs eager equality check" };
        var recompute = new Option<string>("--recompute")
            { DefaultValueFactory = _ => "none", Description = "activation recompute: none, selective, layer, or a comma list measured one after another" };
        var zero = new Option<int>("--zero") { DefaultValueFactory = _ => 0, Description = "ZeRO stage 0, 1 or 2 (data-parallel ranks; BenchTrainParallel)" };
        var expertParallel = new Option<int>("--expert-parallel") { DefaultValueFactory = _ => 1, Description = "routed experts sharded over groups of P ranks" };
        var maxDevices = new Option<int?>("--max-devices-per-token") { Description = "device-limited routing: each token's experts on at most M ranks" };
        var fp8Min = new Option<int>("--fp8-min-dim")
        { DefaultValueFactory = _ => 0, Description = "with --dtype fp8: layers narrower than this run in bf16 (model.fp8_min_dim; 0: all in FP8)" };
        var lr = new Option<double>("--lr") { DefaultValueFactory = _ => 1e-4, Description = "AdamW learning rate (the benchmark's: 1e-4)" };
        var backend = new Option<string>("--backend") { DefaultValueFactory = _ => "auto", Description = "auto | mpi | nccl (several ranks)" };
        var command = new Command("bench-train", "Measure training throughput of a built-in model")
            { precision, steps, warmup, batch, seq, model, layers, device, fastPath, paramsType, graphOpt, selfCheck, profile, recompute, zero, expertParallel, maxDevices, backend, lr, fp8Min };
        command.SetAction(parse =>
        {
            var dev = DeviceSelector.Resolve(parse.GetValue(device));
            var dtype = DTypeNames.Resolve(DTypeNames.Parse(parse.GetValue(precision)!, "--dtype"), dev.type);   // auto: per device
            var p = ModelSetup.PrecisionOf(dtype);
            int fp8MinDim = parse.GetValue(fp8Min);
            if (fp8MinDim < 0 || fp8MinDim > 0 && dtype != DTypeName.Fp8)
                throw new UsageException($"--fp8-min-dim: {fp8MinDim} (a width >= 0, with --dtype fp8 only)");
            string modelName = parse.GetValue(model)!;
            if (!BuiltinModels.ByName.TryGetValue(modelName, out var make)) throw new UsageException($"--model: unknown built-in '{modelName}'");
            if (parse.GetValue(layers) is int depth && depth != 0)
            {
                var shallow = make;
                int dense = shallow().FirstKDenseReplace;
                if (depth <= dense) throw new UsageException($"--layers: {depth} (more than the model's {dense} dense layers, so at least one MoE layer)");
                make = () => shallow() with { NumHiddenLayers = depth };
            }
            bool fast = parse.GetValue(fastPath) switch
            {
                "on" => true, "off" => false, var s => throw new UsageException($"--fast-path: '{s}' (on, off)"),
            };
            bool bf16Params = parse.GetValue(paramsType) switch
            {
                "fp32" => false, "bf16" => true, var s => throw new UsageException($"--params: '{s}' (fp32, bf16)"),
            };
            var modes = parse.GetValue(recompute)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(r => r switch
                {
                    "none" => RecomputeMode.None, "selective" => RecomputeMode.Selective, "layer" => RecomputeMode.Layer,
                    _ => throw new UsageException($"--recompute: '{r}' (none, selective, layer, or a comma list)"),
                }).ToArray();
            if (modes.Length == 0) throw new UsageException("--recompute: no mode given (none, selective, layer)");
            int B = parse.GetValue(batch), T = parse.GetValue(seq);
            if (B <= 0) B = modelName == "bench-moe-large" ? 4 : 8;
            if (T <= 0) T = modelName == "bench-moe-large" ? 2048 : 1024;
            var options = new FastTrainStepOptions { CudaGraph = !parse.GetValue(graphOpt) };
            var layout = ParallelLayout(parse.GetValue(zero), parse.GetValue(expertParallel), parse.GetValue(maxDevices), parse.GetValue(backend));
            if (layout is not null || Dist.World.Size > 1)
            {
                // several ranks (or a distributed layout asked for): the data-parallel step, one row from rank 0
                if (modes.Length > 1) throw new UsageException("--recompute: one mode with several ranks");
                if (parse.GetValue(selfCheck) > 0) throw new UsageException("--self-check: one process only");
                layout ??= new BenchTrainParallel.Layout(ZeroStage.None, 1, null, DistBackend.Auto);
                if (modes[0] == RecomputeMode.Layer && layout.ExpertParallel > 1)
                    throw new UsageException("--recompute layer: not with expert parallelism (a replayed layer would repeat its all-to-alls); use none or selective");
                var row = BenchTrainParallel.Measure(make, modelName, p, fp8MinDim, bf16Params, dev, B, T, modes[0], layout, parse.GetValue(lr), parse.GetValue(warmup), parse.GetValue(steps),
                    fast ? options : null, io.Error);
                row["precision"] = DTypeNames.Name(dtype);
                if (fp8MinDim > 0) row["fp8_min_dim"] = fp8MinDim;
                if (Dist.World.IsMain)
                {
                    io.Out.WriteLine(JsonSerializer.Serialize(row));
                    io.Error.WriteLine(BenchTrainParallel.Table(row));
                }
                return CliApp.Ok;
            }

            var results = new List<Dictionary<string, object>>();
            foreach (var mode in modes)
            {
                var trace = parse.GetValue(profile) is { } path ? (modes.Length > 1 ? $"{path}.{mode.ToString().ToLowerInvariant()}" : path) : null;
                var result = Measure(make, modelName, p, fp8MinDim, bf16Params, dev, B, T, fast, mode, options, parse.GetValue(lr), parse.GetValue(warmup),
                    parse.GetValue(steps), io, trace);
                result["precision"] = DTypeNames.Name(dtype);
                if (fp8MinDim > 0) result["fp8_min_dim"] = fp8MinDim;
                results.Add(result);
            }
            // The self-check after the measured runs: its three models and graphs, run first, left allocations behind
            // that the measured peak counted (bench-moe fp32 fast path: 58.2 GiB against 21 eager, H200 2026-12-05).
            if (parse.GetValue(selfCheck) is int n && n > 0)
            {
                var check = SelfCheck(make, p, fp8MinDim, bf16Params, dev, B, T, n, options);
                foreach (var result in results) result["self_check"] = check;
            }
            foreach (var result in results) io.Out.WriteLine(JsonSerializer.Serialize(result));
            if (modes.Length > 1) io.Error.WriteLine(RecomputeTable(results));
            return CliApp.Ok;
        });
        return command;
    }

    /// <summary>The distributed layout the options ask for, or null for the defaults (zero 0, expert parallel 1, auto).</summary>
    private static BenchTrainParallel.Layout? ParallelLayout(int zero, int expertParallel, int? maxDevices, string? backend)
    {
        if (zero is < 0 or > 2) throw new UsageException($"--zero: {zero} (0, 1 or 2)");
        if (expertParallel < 1) throw new UsageException($"--expert-parallel: {expertParallel} must be at least 1");
        if (maxDevices is < 1) throw new UsageException($"--max-devices-per-token: {maxDevices} must be at least 1");
        DistBackend engine;
        try { engine = DistBackends.Parse(backend, "--backend"); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }
        return zero == 0 && expertParallel == 1 && maxDevices is null && engine == DistBackend.Auto ? null
            : new BenchTrainParallel.Layout((ZeroStage)zero, expertParallel, maxDevices, engine);
    }

    /// <summary>warmup + steps training steps of a fresh model (same init, same batches for every mode); the JSON row.</summary>
    private static Dictionary<string, object> Measure(Func<ModelConfig> make, string modelName, Precision p, int fp8MinDim, bool bf16Params, Device dev,
        int B, int T, bool fast, RecomputeMode mode, FastTrainStepOptions options, double lr, int warmup, int steps, CliIO io,
        string? trace = null)
    {
        var cfg = make();
        void Sync() { if (dev.type == DeviceType.CUDA) cuda.synchronize(dev); }
        using var m = Build(make, p, fp8MinDim, bf16Params, dev);
        m.Recompute = mode;
        using var opt = Optimizer(m, fast, bf16Params, lr);
        using var step = fast ? FastTrainStep.Create(m, opt, B, T, packed: false, FastPathMode.Auto, options, io.Error.WriteLine) : null;
        int devIndex = dev.index < 0 ? 0 : dev.index;
        long? builtBytes = null;   // parameters, optimizer state and the step's buffers, before any step
        if (dev.type == DeviceType.CUDA) { Sync(); CudaMemory.ResetPeak(devIndex); builtBytes = CudaMemory.Read(devIndex, out _)?.AllocatedBytes; }
        bool hostPeak = dev.type == DeviceType.CPU && HostPeakMemory.Reset();

        double fwd = 0, bwd = 0, optMs = 0, total = 0; int measured = 0;
        var losses = new List<double>();
        var gen = new Generator(1234);   // a CPU stream: the same batches on every device and in every mode
        const int traced = 3;            // --profile: steps traced after the measured ones (the timing stays untraced)
        string? traceError = null;
        for (int s = 0; s < warmup + steps + (trace is null ? 0 : traced); s++)
        {
            if (trace is not null && s == warmup + steps)
            {
                Sync();
                traceError = KernelProfiler.Start();
                if (traceError is not null) break;
            }
            using var scope = NewDisposeScope();
            var ids = randint(0, cfg.VocabSize, [B, T], generator: gen).to(dev);
            var labels = cat([ids.narrow(1, 1, T - 1), full(B, 1, -100L, dtype: ScalarType.Int64, device: dev)], 1);
            Sync();
            var t0 = Stopwatch.GetTimestamp();
            long t1 = t0, t2 = t0;
            Tensor loss;
            if (step is not null)
            {
                loss = step.Step(ids, labels, null, null, lr).Loss;
                MoeBalancer.Step(m, 0.0);
            }
            else
            {
                var output = m.Forward(ids);
                var (sum, count) = Losses.CrossEntropySum(output.Logits, labels);
                loss = sum / count;
                Sync(); t1 = Stopwatch.GetTimestamp();
                loss.backward();
                Sync(); t2 = Stopwatch.GetTimestamp();
                opt.Step(); opt.ZeroGrad();
                MoeBalancer.Step(m, 0.0);
            }
            Sync(); var t3 = Stopwatch.GetTimestamp();
            if (s < warmup + steps) losses.Add(loss.to(ScalarType.Float32).item<float>());   // after the timing: the step's host sync is not measured
            if (s >= warmup && s < warmup + steps)
            {
                if (step is null) { fwd += Ms(t0, t1); bwd += Ms(t1, t2); optMs += Ms(t2, t3); }
                total += Ms(t0, t3); measured++;
            }
        }
        if (trace is not null && traceError is null) { Sync(); traceError = KernelProfiler.Stop(trace); }
        if (trace is not null) io.Error.WriteLine(traceError is null ? $"profile: {traced} steps traced into {trace}" : $"profile: not traced ({traceError})");
        var mem = dev.type == DeviceType.CUDA ? CudaMemory.Read(devIndex, out _) : null;
        var result = new Dictionary<string, object>
        {
            ["bench"] = "posttrain_train", ["model"] = modelName, ["layers"] = cfg.NumHiddenLayers,
            ["params"] = bf16Params ? "bf16" : "fp32", ["fast_path"] = step?.Description ?? "off", ["device"] = dev.ToString(),
            ["recompute"] = mode.ToString().ToLowerInvariant(), ["world_size"] = 1, ["batch"] = B, ["seq"] = T,
            ["tokens_per_s"] = Math.Round(B * T / (total / measured / 1000)), ["step_ms"] = Math.Round(total / measured, 1),
            ["loss"] = losses[^1], ["losses"] = losses.Select(l => Math.Round(l, 6)).ToArray(),
            ["parameters_m"] = Math.Round(m.ParameterCount() / 1e6, 1), ["parameters"] = m.ParameterCount(),
        };
        if (trace is not null && traceError is null) { result["profile"] = trace; result["profiled_steps"] = traced; }
        if (dev.type == DeviceType.CUDA)
        {
            // Which native kernel groups this run used (their self-check lines name any kernel kept on the plain ops).
            string On(IReadOnlyDictionary<int, string> status) => status.TryGetValue(devIndex, out var st) ? (st.StartsWith("on") ? "on" : "off") : "unused";
            result["kernels"] = new Dictionary<string, string>
            {
                ["fused"] = On(PostTrain.Core.Kernels.FusedKernels.Status), ["train"] = On(PostTrain.Core.Kernels.TrainKernels.Status),
                ["decode"] = On(PostTrain.Core.Kernels.DecodeKernels.Status),
                ["recomputed_experts"] = On(PostTrain.Core.Model.RecomputedExperts.Status),
            };
        }
        if (step is null)
        {
            result["forward_ms"] = Math.Round(fwd / measured, 1);
            result["backward_ms"] = Math.Round(bwd / measured, 1);
            result["optimizer_ms"] = Math.Round(optMs / measured, 1);
        }
        if (mem is not null) result["peak_gib"] = Math.Round(mem.PeakAllocatedBytes / (double)(1L << 30), 2);
        if (builtBytes is long built) result["before_steps_gib"] = Math.Round(built / (double)(1L << 30), 2);
        if (hostPeak && HostPeakMemory.PeakBytes() is long rss) result["host_peak_gib"] = Math.Round(rss / (double)(1L << 30), 3);
        return result;
    }

    /// <summary>The modes side by side against the first (the same-run baseline): tokens/s, step and its split, peak
    /// memory, and the largest per-step loss difference (same init, same batches: rounding only).</summary>
    private static string RecomputeTable(List<Dictionary<string, object>> rows)
    {
        var b = rows[0];
        var baseLosses = (double[])b["losses"];
        var lines = new List<string>
        {
            $"recompute, {b["model"]} ({b["batch"]} x {b["seq"]} tokens, fast path {b["fast_path"]}), against {b["recompute"]}:",
            $"| recompute | tokens/s | vs base | step ms (fwd / bwd / opt) | {(b.ContainsKey("peak_gib") ? "peak GiB" : "host peak GiB")} | vs base | max |loss diff| |",
            "|---|---|---|---|---|---|---|",
        };
        foreach (var r in rows)
        {
            string split = r.TryGetValue("forward_ms", out var f) ? $"{r["step_ms"]} ({f} / {r["backward_ms"]} / {r["optimizer_ms"]})" : $"{r["step_ms"]}";
            string key = r.ContainsKey("peak_gib") ? "peak_gib" : "host_peak_gib";
            string peak = r.TryGetValue(key, out var pk) ? $"{pk}" : "-";
            string peakRatio = r.TryGetValue(key, out var pr) && b.TryGetValue(key, out var pb) && (double)pb > 0
                ? $"{(double)pr / (double)pb:F2}x" : "-";
            double diff = ((double[])r["losses"]).Zip(baseLosses, (x, y) => Math.Abs(x - y)).Max();
            lines.Add($"| {r["recompute"]} | {r["tokens_per_s"]:N0} | {(double)r["tokens_per_s"] / (double)b["tokens_per_s"]:F2}x | {split} | {peak} | {peakRatio} | {diff:E2} |");
        }
        return string.Join('\n', lines);
    }

    internal static DeepSeekForCausalLM Build(Func<ModelConfig> make, Precision p, int fp8MinDim, bool bf16Params, Device dev)
    {
        var cfg = make();
        random.manual_seed(0);
        if (dev.type == DeviceType.CUDA) cuda.manual_seed_all(0);   // the weights are drawn on the device: same init every build
        var m = new DeepSeekForCausalLM(cfg, dev);
        m.InitWeights(0.02, 0);
        m.SetPrecision(p, fp8MinDim);
        if (bf16Params) m.to(ScalarType.BFloat16);
        m.train();
        return m;
    }

    private static AdamW Optimizer(DeepSeekForCausalLM m, bool fused, bool bf16Params, double lr = 1e-4) =>
        new(m.named_parameters().Select(x => (x.name, x.parameter)), lr, 0.9, 0.999, 1e-8, 0.0, fused: fused);

    /// <summary>n steps from one init: the plain eager step, the fast step without graph and with it. Losses per step
    /// and the weights after are compared (max |diff| of losses, relative L2 difference of all weights).</summary>
    private static Dictionary<string, object> SelfCheck(Func<ModelConfig> make, Precision p, int fp8MinDim, bool bf16Params, Device dev, int B, int T, int n,
        FastTrainStepOptions options)
    {
        var cfg = make();
        // Disposed on return: left to the finaliser, their weights and gradients stayed allocated during the measured
        // run that follows and were counted in its peak (bench-moe fp32 fast path: 43.98 GiB on the H200, 2026-12-04).
        using var plain = Build(make, p, fp8MinDim, bf16Params, dev);
        using var eagerFast = Build(make, p, fp8MinDim, bf16Params, dev);
        using var graphFast = Build(make, p, fp8MinDim, bf16Params, dev);
        using var o1 = Optimizer(plain, false, bf16Params);
        using var o2 = Optimizer(eagerFast, true, bf16Params);
        using var o3 = Optimizer(graphFast, true, bf16Params);
        using var s2 = FastTrainStep.Create(eagerFast, o2, B, T, false, FastPathMode.Auto, options with { CudaGraph = false });
        using var s3 = FastTrainStep.Create(graphFast, o3, B, T, false, FastPathMode.Auto, options);
        var gen = new Generator(99);
        double maxPlain = 0, maxEager = 0;
        var losses = new List<double[]>();
        for (int s = 0; s < n; s++)
        {
            using var scope = NewDisposeScope();
            var ids = randint(0, cfg.VocabSize, [B, T], generator: gen).to(dev);
            var labels = cat([ids.narrow(1, 1, T - 1), full(B, 1, -100L, dtype: ScalarType.Int64, device: dev)], 1);
            var output = plain.Forward(ids);
            var (sum, count) = Losses.CrossEntropySum(output.Logits, labels);
            var l1 = sum / count;
            l1.backward();
            o1.Step(); o1.ZeroGrad();
            MoeBalancer.Step(plain, 0.0);
            double a = l1.item<float>();
            double b = s2.Step(ids, labels, null, null, 1e-4).Loss.item<float>();
            MoeBalancer.Step(eagerFast, 0.0);
            double c = s3.Step(ids, labels, null, null, 1e-4).Loss.item<float>();
            MoeBalancer.Step(graphFast, 0.0);
            losses.Add([a, b, c]);
            maxPlain = Math.Max(maxPlain, Math.Abs(c - a));
            maxEager = Math.Max(maxEager, Math.Abs(c - b));
        }
        double WeightDiff(DeepSeekForCausalLM x, DeepSeekForCausalLM y)
        {
            using var scope = NewDisposeScope();
            double num = 0, den = 0;
            foreach (var (pa, pb) in x.parameters().Zip(y.parameters()))
            {
                num += (pa.to(ScalarType.Float32) - pb.to(ScalarType.Float32)).pow(2).sum().item<float>();
                den += pa.to(ScalarType.Float32).pow(2).sum().item<float>();
            }
            return Math.Sqrt(num / den);
        }
        using var init = Build(make, p, fp8MinDim, bf16Params, dev);
        var result = new Dictionary<string, object>
        {
            ["steps"] = n, ["graph_mode"] = s3.Description,
            ["max_loss_diff_graph_vs_plain_eager"] = maxPlain, ["max_loss_diff_graph_vs_fast_eager"] = maxEager,
            ["weights_rel_l2_graph_vs_plain_eager"] = WeightDiff(graphFast, plain),
            ["weights_rel_l2_graph_vs_fast_eager"] = WeightDiff(graphFast, eagerFast),
            ["weights_rel_l2_moved_from_init"] = WeightDiff(graphFast, init),
            ["losses_first_last"] = new[] { losses[0], losses[^1] },
        };
        foreach (var m in new[] { plain, eagerFast, graphFast }) m.Dispose();
        return result;
    }

    private static double Ms(long a, long b) => (b - a) * 1000.0 / Stopwatch.Frequency;
}
