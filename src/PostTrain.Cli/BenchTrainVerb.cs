// posttrain bench-train: training throughput of the benchmark model (shared/bench/bench-moe.json: 274 M parameters)
// with its stated step: AdamW lr 1e-4, batch 8 x 1024 random token ids, next-token cross-entropy; mean of --steps steps
// after --warmup. Prints one JSON line (tokens/s, per-phase milliseconds: forward, backward, optimizer, and a
// separate attention / MoE split measured on one layer) so benchmarks/run-gpu.sh can tabulate it beside Hugging Face.
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using PostTrain.Core.Model;
using PostTrain.Core.Precision;
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
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 8 };
        var seq = new Option<int>("--seq") { DefaultValueFactory = _ => 1024 };
        var model = new Option<string>("--model") { DefaultValueFactory = _ => "bench-moe", Description = "built-in model name" };
        var device = new Option<string>("--device") { DefaultValueFactory = _ => "auto" };
        var command = new Command("bench-train", "Measure training throughput of a built-in model") { precision, steps, warmup, batch, seq, model, device };
        command.SetAction(parse =>
        {
            var dev = DeviceSelector.Resolve(parse.GetValue(device));
            var p = ModelSetup.PrecisionOf(DTypeNames.Parse(parse.GetValue(precision)!, "--dtype"));
            if (!BuiltinModels.ByName.TryGetValue(parse.GetValue(model)!, out var make)) throw new UsageException($"--model: unknown built-in '{parse.GetValue(model)}'");
            var cfg = make();
            random.manual_seed(0);
            var m = new DeepSeekForCausalLM(cfg);
            m.InitWeights(0.02, 0);
            m.SetPrecision(p);
            m.to(dev);
            m.train();
            var named = m.named_parameters().Select(x => (x.name, x.parameter)).ToList();
            using var opt = new AdamW(named, 1e-4, 0.9, 0.999, 1e-8, 0.0);
            int B = parse.GetValue(batch), T = parse.GetValue(seq);
            void Sync() { if (dev.type == DeviceType.CUDA) cuda.synchronize(dev); }
            double fwd = 0, bwd = 0, optMs = 0, total = 0; int measured = 0; double lastLoss = 0;
            for (int step = 0; step < parse.GetValue(warmup) + parse.GetValue(steps); step++)
            {
                using var scope = NewDisposeScope();
                var ids = randint(0, cfg.VocabSize, [B, T], device: dev);
                var labels = cat([ids.narrow(1, 1, T - 1), full(B, 1, -100L, dtype: ScalarType.Int64, device: dev)], 1);
                Sync();
                var t0 = Stopwatch.GetTimestamp();
                var output = m.Forward(ids);
                var (sum, count) = Losses.CrossEntropySum(output.Logits, labels);
                var loss = sum / count;
                Sync(); var t1 = Stopwatch.GetTimestamp();
                loss.backward();
                Sync(); var t2 = Stopwatch.GetTimestamp();
                opt.Step(); opt.ZeroGrad();
                MoeBalancer.Step(m, 0.0);
                Sync(); var t3 = Stopwatch.GetTimestamp();
                if (step >= parse.GetValue(warmup))
                {
                    fwd += Ms(t0, t1); bwd += Ms(t1, t2); optMs += Ms(t2, t3); total += Ms(t0, t3); measured++;
                    lastLoss = loss.item<float>();
                }
            }
            var split = LayerSplit(m, cfg, B, T, dev, Sync);
            var result = new Dictionary<string, object>
            {
                ["bench"] = "posttrain_train", ["precision"] = parse.GetValue(precision)!, ["device"] = dev.ToString(),
                ["tokens_per_s"] = Math.Round(B * T / (total / measured / 1000)), ["step_ms"] = Math.Round(total / measured, 1),
                ["forward_ms"] = Math.Round(fwd / measured, 1), ["backward_ms"] = Math.Round(bwd / measured, 1),
                ["optimizer_ms"] = Math.Round(optMs / measured, 1), ["loss"] = lastLoss,
                ["layer_attention_fwd_bwd_ms"] = split.Attention, ["layer_moe_fwd_bwd_ms"] = split.Moe,
                ["parameters_m"] = Math.Round(m.ParameterCount() / 1e6, 1),
            };
            io.Out.WriteLine(JsonSerializer.Serialize(result));
            return CliApp.Ok;
        });
        return command;
    }

    private static double Ms(long a, long b) => (b - a) * 1000.0 / Stopwatch.Frequency;

    /// <summary>Forward + backward time of one MoE layer's attention and its MoE block alone, on (B, T, H) input.</summary>
    private static (double Attention, double Moe) LayerSplit(DeepSeekForCausalLM m, ModelConfig cfg, int B, int T, Device dev, Action sync)
    {
        var layer = m.Model.Layers[cfg.FirstKDenseReplace];
        var pos = arange(T, device: dev).unsqueeze(0).expand(B, T);
        var (cos, sin) = m.Rotary.Angles(pos);
        double Time(Func<Tensor, Tensor> f)
        {
            double ms = 0;
            for (int i = 0; i < 4; i++)
            {
                using var scope = NewDisposeScope();
                var x = randn(B, T, cfg.HiddenSize, device: dev).to(m.ComputeDtype).requires_grad_(true);
                sync(); var t0 = Stopwatch.GetTimestamp();
                f(x).to(ScalarType.Float32).pow(2).mean().backward();
                sync();
                if (i > 0) ms += Ms(t0, Stopwatch.GetTimestamp());
            }
            m.zero_grad();
            return Math.Round(ms / 3, 2);
        }
        double attn = Time(x => layer.Attention.Forward(x, cos, sin, m.Rotary, null));
        double moe = Time(x => layer.Moe!.forward(x));
        layer.Moe!.TakeLoads();
        return (attn, moe);
    }
}
