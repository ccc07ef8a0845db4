// Generation throughput benchmark. On CUDA: BuiltinModels.BenchMoe() (random init, bf16 compute), 64 prompts x 32
// random tokens, 256 new tokens at temperature 1, no stop token (every sequence runs to the limit); prints tokens/s
// of an unprofiled run, then a profiled run's per-phase breakdown (device synchronised around each phase, so the
// profiled run itself is slower). On CPU it runs a tiny configuration (tiny-moe, 8 x 16 tokens, 32 new) and says so.
// Options: --model bench-moe|tiny-moe|micro-moe --prompts N --prompt-len N --new N --temperature T --greedy
//          --spec (MTP speculative greedy; the model gets an MTP module) --cpu --seed N --threads N (CPU intra-op threads)
using System.Diagnostics;
using PostTrain.Core.Generation;
using PostTrain.Core.Model;
using TorchSharp;
using static TorchSharp.torch;

var opts = Args.Parse(args);
bool cuda = !opts.Has("--cpu") && torch.cuda.is_available();
var device = cuda ? CUDA : CPU;
string modelName = opts.Get("--model", cuda ? "bench-moe" : "tiny-moe");
int nPrompts = opts.GetInt("--prompts", cuda ? 64 : 8);
int promptLen = opts.GetInt("--prompt-len", cuda ? 32 : 16);
int newTokens = opts.GetInt("--new", cuda ? 256 : 32);
bool spec = opts.Has("--spec");
bool greedy = spec || opts.Has("--greedy");
double temperature = greedy ? 0 : double.Parse(opts.Get("--temperature", "1"), System.Globalization.CultureInfo.InvariantCulture);
long seed = opts.GetInt("--seed", 1);
if (opts.Has("--threads")) torch.set_num_threads(opts.GetInt("--threads", 1));
if (!cuda)
    Console.WriteLine($"No CUDA device (or --cpu): running the tiny CPU configuration ({modelName}, {nPrompts} x {promptLen} tokens, {newTokens} new); numbers are not GPU numbers.");

if (!BuiltinModels.ByName.TryGetValue(modelName, out var makeConfig))
    throw new ArgumentException($"--model: unknown '{modelName}' (known: {string.Join(", ", BuiltinModels.ByName.Keys)})");
var config = makeConfig();
if (spec && config.NumNextnPredictLayers == 0) config = config with { NumNextnPredictLayers = 1 };
var sw = Stopwatch.StartNew();
var model = new DeepSeekForCausalLM(config, device);
model.InitWeights(0.02, seed);
model.eval();
model.ComputeDtype = cuda ? ScalarType.BFloat16 : ScalarType.Float32;
Console.WriteLine($"model {modelName}: {model.ParameterCount() / 1e6:F1} M parameters on {device} ({model.ComputeDtype}), " +
                  $"built in {sw.Elapsed.TotalSeconds:F1} s; {(cuda ? "" : $"{torch.get_num_threads()} CPU threads; ")}" +
                  $"{nPrompts} prompts x {promptLen} tokens, {newTokens} new, {(spec ? "MTP speculative greedy" : greedy ? "greedy" : $"temperature {temperature}")}");

var rng = new Random((int)seed);
var prompts = Enumerable.Range(0, nPrompts)
    .Select(_ => Enumerable.Range(0, promptLen).Select(_ => rng.Next(config.VocabSize)).ToArray()).ToArray();
var p = new SamplingParams(Temperature: temperature, MaxNewTokens: newTokens, StopTokenIds: [], Seed: seed);
var options = new GenerationOptions { SpeculativeMtp = spec, MaxBatchSize = Math.Max(nPrompts, 1) };

// warm-up (kernels, allocator, weight casts), then the measured run, then the profiled run
new TokenGenerator(model, options).Generate(prompts, p with { MaxNewTokens = Math.Min(16, newTokens) });
var gen = new TokenGenerator(model, options);
gen.Generate(prompts, p);
var s = gen.LastStats;
Console.WriteLine($"throughput: {s}");
Console.WriteLine($"  generated tokens/s: {s.TokensPerSecond:F0}   decode tokens/s: {s.GeneratedTokens / s.DecodeSeconds:F0}   " +
                  $"ms per decode step: {1000 * s.DecodeSeconds / Math.Max(1, s.DecodeSteps):F2}");

var prof = new TokenGenerator(model, options with { Profile = true });
prof.Generate(prompts, p);
var ps = prof.LastStats;
Console.WriteLine($"profiled run (device synchronised around phases): {ps}");
Console.WriteLine($"  {"prefill",-10} {ps.PrefillSeconds * 1000,10:F1} ms");
double listed = 0;
foreach (var (phase, sec) in ps.PhaseSeconds.OrderByDescending(kv => kv.Value))
{
    Console.WriteLine($"  {phase,-10} {sec * 1000,10:F1} ms  {100 * sec / ps.DecodeSeconds,5:F1} % of decode");
    listed += sec;
}
Console.WriteLine($"  {"other",-10} {(ps.DecodeSeconds - listed) * 1000,10:F1} ms  {100 * (ps.DecodeSeconds - listed) / ps.DecodeSeconds,5:F1} % of decode (embedding, rotary angles, masks, loop)");

/// <summary>Minimal "--key value" / "--flag" parsing.</summary>
sealed class Args(Dictionary<string, string?> values)
{
    public static Args Parse(string[] a)
    {
        var d = new Dictionary<string, string?>();
        for (int i = 0; i < a.Length; i++)
        {
            if (!a[i].StartsWith("--")) throw new ArgumentException($"unexpected argument '{a[i]}'");
            bool hasValue = i + 1 < a.Length && !a[i + 1].StartsWith("--");
            d[a[i]] = hasValue ? a[++i] : null;
        }
        return new Args(d);
    }
    public bool Has(string k) => values.ContainsKey(k);
    public string Get(string k, string dflt) => values.TryGetValue(k, out var v) && v is not null ? v : dflt;
    public int GetInt(string k, int dflt) => values.TryGetValue(k, out var v) && v is not null
        ? int.TryParse(v, out var n) ? n : throw new ArgumentException($"{k}: '{v}' is not an integer")
        : dflt;
}
