// Generation throughput benchmark. On CUDA: BuiltinModels.BenchMoe() (random init, bf16 compute), 64 prompts x 32
// random tokens, 256 new tokens at temperature 1, no stop token (every sequence runs to the limit); prints tokens/s
// of unprofiled runs (eager steps, and on CUDA the CUDA-graph step when native/cudagraph is built), then a profiled
// eager run's per-phase breakdown (device synchronised around each phase, so the profiled run itself is slower). On
// CPU it runs a tiny configuration (tiny-moe, 8 x 16 tokens, 32 new) and says so.
// --spec: greedy, and every decode mode runs twice in the same process on the same prompts, plain and with MTP
// speculative decoding (the static draft-and-verify step, CUDA-graph captured where graphs load); the table adds the
// MTP acceptance rate, and the speculative tokens are compared with the plain ones. A random MTP head drafts badly:
// use a model with a trained one (--model models/tiny-moe-arith-base --prompt-source arith).
// Options: --model bench-moe|tiny-moe|micro-moe|<checkpoint dir> --prompts N --prompt-len N --new N --temperature T --greedy
//          --spec (the model gets an MTP module if it has none) --prompt-source random|arith (arith: BOS + arithmetic
//          word problems of PostTrain.Data's generator, byte tokenizer: the text tiny-moe-arith-base was pre-trained
//          on; --prompt-len is then ignored) --cpu --seed N --threads N (CPU intra-op threads)
//          --decode-kernels: also time the CUDA-graph step with the fused decode kernels (native/kernels/posttrain_decode.cu)
//          off and on in this process (sampled, or greedy with --greedy), and compare their tokens
using System.Diagnostics;
using PostTrain.Core.Generation;
using PostTrain.Core.Model;
using PostTrain.Data.Generators;
using PostTrain.Data.Tokenizers;
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
string promptSource = opts.Get("--prompt-source", "random");
if (promptSource is not ("random" or "arith")) throw new ArgumentException($"--prompt-source: '{promptSource}' is not random or arith");
bool greedy = spec || opts.Has("--greedy");
double temperature = greedy ? 0 : double.Parse(opts.Get("--temperature", "1"), System.Globalization.CultureInfo.InvariantCulture);
long seed = opts.GetInt("--seed", 1);
if (opts.Has("--threads")) torch.set_num_threads(opts.GetInt("--threads", 1));
if (!cuda)
    Console.WriteLine($"No CUDA device (or --cpu): running the tiny CPU configuration ({modelName}, {nPrompts} prompts, {newTokens} new); numbers are not GPU numbers.");

var sw = Stopwatch.StartNew();
DeepSeekForCausalLM model;
if (Directory.Exists(modelName))
{
    // a checkpoint directory (e.g. the 16B random-init one of posttrain init-checkpoint): streamed onto the device,
    // then held in bf16 on CUDA (the decode weights; halves the memory of fp32 masters)
    (model, var report) = PretrainedModel.Load(modelName, device);
    if (cuda) model.to(ScalarType.BFloat16);
    Console.WriteLine($"loaded {modelName} in {report.Seconds:F1} s, peak host memory {report.PeakHostBytes / 1e9:F2} GB");
}
else
{
    if (!BuiltinModels.ByName.TryGetValue(modelName, out var makeConfig))
        throw new ArgumentException($"--model: unknown '{modelName}' (a directory, or one of: {string.Join(", ", BuiltinModels.ByName.Keys)})");
    var config = makeConfig();
    if (spec && config.NumNextnPredictLayers == 0) config = config with { NumNextnPredictLayers = 1 };
    model = new DeepSeekForCausalLM(config, device);
    model.InitWeights(0.02, seed);
}
model.eval();
model.ComputeDtype = cuda ? ScalarType.BFloat16 : ScalarType.Float32;
Console.WriteLine($"model {modelName}: {model.ParameterCount() / 1e6:F1} M parameters on {device} ({model.ComputeDtype}), " +
                  $"built in {sw.Elapsed.TotalSeconds:F1} s; {(cuda ? "" : $"{torch.get_num_threads()} CPU threads; ")}" +
                  $"{nPrompts} {promptSource} prompts" + (promptSource == "random" ? $" x {promptLen} tokens" : "") +
                  $", {newTokens} new, {(spec ? "greedy, plain and MTP speculative" : greedy ? "greedy" : $"temperature {temperature}")}");

int[][] prompts;
if (promptSource == "arith")
{
    var bytes = ByteTokenizer.Instance;
    if (model.Config.VocabSize != bytes.VocabSize)
        throw new ArgumentException($"--prompt-source arith: prompts use the byte tokenizer (vocabulary {bytes.VocabSize}); the model's vocabulary is {model.Config.VocabSize}");
    // as in pre-training (plain template): BOS + prompt, then the model writes the solution
    prompts = ArithmeticGenerator.Generate(nPrompts, (ulong)seed).Select(x => (int[])[bytes.BosId, .. bytes.Encode(x.Prompt)]).ToArray();
}
else
{
    var rng = new Random((int)seed);
    prompts = Enumerable.Range(0, nPrompts)
        .Select(_ => Enumerable.Range(0, promptLen).Select(_ => rng.Next(model.Config.VocabSize)).ToArray()).ToArray();
}
var p = new SamplingParams(Temperature: temperature, MaxNewTokens: newTokens, StopTokenIds: [], Seed: seed);
var options = new GenerationOptions { MaxBatchSize = Math.Max(nPrompts, 1) };

// Each decode mode: warm-up (kernels, allocator, weight casts), then the measured run. On CUDA: eager steps and the
// CUDA-graph step (when libposttrain_cudagraph.so loads), in the same process on the same prompts; with --spec each
// also with MTP speculative decoding (its step runs uncaptured where the plain one is eager).
bool graphs = false;
if (cuda)
{
    graphs = CudaGraph.IsAvailable(out var why);
    if (!graphs) Console.WriteLine($"CUDA graphs unavailable: {why}");
}
// --graph-only: only the CUDA-graph mode is timed (long generations at the 16B size, where an eager run of the same
// length would take minutes more); --no-profile skips the profiled eager run at the end.
bool graphOnly = opts.Has("--graph-only") && graphs;
var modes = new List<GenerationOptions>();
if (!graphOnly) modes.Add(options with { CudaGraphs = CudaGraphMode.Off });
if (graphs) modes.Add(options with { CudaGraphs = CudaGraphMode.On });
if (spec) modes.AddRange(modes.Select(o => o with { SpeculativeMtp = true }).ToList());
var rows = new List<(string Name, GenerationStats Stats, IReadOnlyList<GenerationResult> Results)>();
foreach (var o in modes)
{
    new TokenGenerator(model, o).Generate(prompts, p with { MaxNewTokens = Math.Min(16, newTokens) });
    var gen = new TokenGenerator(model, o);
    var results = gen.Generate(prompts, p);
    rows.Add((gen.LastStats.DecodeMode, gen.LastStats, results));
    Console.WriteLine($"{gen.LastStats.DecodeMode}: {gen.LastStats}");
}
Console.WriteLine();
Console.WriteLine($"| decode | generated tokens/s | decode tokens/s | ms per decode step | MTP acceptance | vs {rows[0].Name} |");
Console.WriteLine($"|---|---|---|---|---|---|");
foreach (var (name, st, _) in rows)
    Console.WriteLine($"| {name} | {st.TokensPerSecond:F0} | {st.GeneratedTokens / st.DecodeSeconds:F0} | " +
                      $"{1000 * st.DecodeSeconds / Math.Max(1, st.DecodeSteps):F2} | " +
                      $"{(st.DraftsProposed > 0 ? $"{st.AcceptanceRate:P1} ({st.DraftsAccepted}/{st.DraftsProposed})" : "-")} | " +
                      $"{st.TokensPerSecond / rows[0].Stats.TokensPerSecond:F2}x |");
if (spec)
{
    // Speculative greedy decoding emits plain greedy's tokens; in bf16 the 2-column verify forward rounds differently
    // from the 1-column step, so near-tied choices can flip: report where rows first diverge.
    int half = rows.Count / 2;
    for (int i = 0; i < half; i++)
        Console.WriteLine($"greedy {newTokens} tokens, {rows[half + i].Name} vs {rows[i].Name}: {Compare(rows[half + i].Results, rows[i].Results)}");
}
if (graphs)
{
    // Correctness of the graph: replaying the captured step must give exactly what the same static-shape step gives
    // run eagerly (same kernels). Against plain eager decoding (attention over the written columns only, other GEMM
    // shapes) bf16 rounding differs slightly, so near-tied greedy choices can flip: report where rows first diverge and
    // the log-prob difference of the tokens before that.
    var g = p with { Temperature = 0, MaxNewTokens = Math.Min(64, newTokens) };
    var eager = new TokenGenerator(model, options with { CudaGraphs = CudaGraphMode.Off }).Generate(prompts, g);
    var stat = new TokenGenerator(model, options with { CudaGraphs = CudaGraphMode.Off, StaticDecodeStep = true }).Generate(prompts, g);
    var graph = new TokenGenerator(model, options with { CudaGraphs = CudaGraphMode.On }).Generate(prompts, g);
    Console.WriteLine($"greedy {g.MaxNewTokens} tokens, cuda-graph vs the same step uncaptured: {Compare(graph, stat)}");
    Console.WriteLine($"greedy {g.MaxNewTokens} tokens, cuda-graph vs eager decoding: {Compare(graph, eager)}");
    if (spec)
    {
        var specStat = new TokenGenerator(model, options with { CudaGraphs = CudaGraphMode.Off, SpeculativeMtp = true }).Generate(prompts, g);
        var specGraph = new TokenGenerator(model, options with { CudaGraphs = CudaGraphMode.On, SpeculativeMtp = true }).Generate(prompts, g);
        Console.WriteLine($"greedy {g.MaxNewTokens} tokens, mtp-cuda-graph vs the same step uncaptured: {Compare(specGraph, specStat)}");
    }
}
if (graphs && opts.Has("--decode-kernels"))
{
    // The fused decode kernels (rotary, masked softmax, router selection, routing-weighted SiLU) against the plain ops,
    // same process, same prompts, greedy: ms per step of the captured step each way, and where greedy rows part (the
    // kernels round like the plain ops except for the softmax's exp and sums, so near-tied picks can flip). Sampled
    // (the default on CUDA, temperature 1) this also runs the sampling kernel; --greedy compares greedy decoding.
    var g = p;
    string how = g.IsGreedy ? "greedy" : $"sampled (temperature {g.Temperature})";
    var byMode = new List<(string Name, GenerationStats Stats, IReadOnlyList<GenerationResult> Results)>();
    foreach (var on in new[] { false, true })
    {
        PostTrain.Core.Kernels.DecodeKernels.Enabled = on;
        var o = options with { CudaGraphs = CudaGraphMode.On };
        new TokenGenerator(model, o).Generate(prompts, g with { MaxNewTokens = Math.Min(16, newTokens) });
        var gen = new TokenGenerator(model, o);
        var results = gen.Generate(prompts, g);
        byMode.Add(($"cuda-graph, decode kernels {(on ? "on" : "off")}", gen.LastStats, results));
    }
    PostTrain.Core.Kernels.DecodeKernels.Enabled = true;
    Console.WriteLine($"decode kernels: {string.Join("; ", PostTrain.Core.Kernels.DecodeKernels.Status.Select(kv => $"cuda:{kv.Key} {kv.Value}"))}");
    Console.WriteLine($"| {how} decode | generated tokens/s | ms per decode step | vs off |");
    Console.WriteLine($"|---|---|---|---|");
    foreach (var (name, st, _) in byMode)
        Console.WriteLine($"| {name} | {st.TokensPerSecond:F0} | {1000 * st.DecodeSeconds / Math.Max(1, st.DecodeSteps):F2} | {st.TokensPerSecond / byMode[0].Stats.TokensPerSecond:F2}x |");
    Console.WriteLine($"{how}, {newTokens} tokens, decode kernels on vs off: {Compare(byMode[1].Results, byMode[0].Results)}");
}
if (graphs && opts.Has("--kernel-trace"))
{
    // The kernels of one captured-graph generation (prefill, capture and every decode step) traced by libtorch's
    // Kineto profiler (native/profiler; POSTTRAIN_PROFILER_LIB) into a Chrome trace for benchmarks/hf/kernel_summary.py
    // (divide by the decode steps printed here: the decode steps dominate the sums).
    string path = opts.Get("--kernel-trace", "decode-trace.json");
    var o = options with { CudaGraphs = CudaGraphMode.On };
    var gen = new TokenGenerator(model, o);
    var error = PostTrain.Core.Runtime.KernelProfiler.Start();
    if (error is null)
    {
        gen.Generate(prompts, p);
        torch.cuda.synchronize();
        error = PostTrain.Core.Runtime.KernelProfiler.Stop(path);
    }
    Console.WriteLine(error is null ? $"kernel trace: {gen.LastStats.DecodeSteps} decode steps ({gen.LastStats.DecodeMode}) traced into {path}"
        : $"kernel trace: not traced ({error})");
}
if (cuda)
{
    // memory: the latent cache's size from the shapes (c_kv + k_rope per token and layer, compute dtype) beside the
    // allocator's peak over the runs above and the weights' bytes
    var c = model.Config;
    long tokens = (long)nPrompts * (promptLen + newTokens);
    double kvGb = (double)c.NumHiddenLayers * (c.KvLoraRank + c.QkRopeHeadDim) * 2 * tokens / 1e9;
    double weightsGb = model.parameters().Sum(t => t.numel() * t.ElementSize) / 1e9;
    var mem = PostTrain.Core.Runtime.CudaMemory.Read(0, out var why);
    Console.WriteLine($"latent KV cache for {nPrompts} x {promptLen + newTokens} tokens: {kvGb:F2} GB (bf16, from the shapes); weights {weightsGb:F2} GB; " +
                      (mem is null ? $"allocator peak unavailable ({why})" : $"allocator peak {mem.PeakAllocatedBytes / 1e9:F2} GB"));
}
Console.WriteLine();
if (opts.Has("--no-profile")) return;

var prof = new TokenGenerator(model, options with { Profile = true, CudaGraphs = CudaGraphMode.Off, SpeculativeMtp = spec });
prof.Generate(prompts, p);
var ps = prof.LastStats;
Console.WriteLine($"profiled {(spec ? "mtp-static" : "eager")} run (device synchronised around phases): {ps}");
Console.WriteLine($"  {"prefill",-10} {ps.PrefillSeconds * 1000,10:F1} ms");
double listed = 0;
foreach (var (phase, sec) in ps.PhaseSeconds.OrderByDescending(kv => kv.Value))
{
    Console.WriteLine($"  {phase,-10} {sec * 1000,10:F1} ms  {100 * sec / ps.DecodeSeconds,5:F1} % of decode");
    listed += sec;
}
Console.WriteLine($"  {"other",-10} {(ps.DecodeSeconds - listed) * 1000,10:F1} ms  {100 * (ps.DecodeSeconds - listed) / ps.DecodeSeconds,5:F1} % of decode (embedding, rotary angles, masks, loop)");

/// <summary>Rows with identical tokens, the mean first divergence, and the largest log-prob difference before it.</summary>
static string Compare(IReadOnlyList<GenerationResult> a, IReadOnlyList<GenerationResult> b)
{
    int same = 0;
    double maxLp = 0;
    var firsts = new List<int>();
    for (int i = 0; i < a.Count; i++)
    {
        int n = Math.Min(a[i].TokenIds.Length, b[i].TokenIds.Length), t = 0;
        for (; t < n && a[i].TokenIds[t] == b[i].TokenIds[t]; t++) maxLp = Math.Max(maxLp, Math.Abs(a[i].LogProbs[t] - b[i].LogProbs[t]));
        if (t == n && a[i].TokenIds.Length == b[i].TokenIds.Length) same++;
        else firsts.Add(t);
    }
    return $"{same}/{a.Count} rows identical" + (firsts.Count > 0 ? $", the others first differ at token {firsts.Average():F1} on average (earliest {firsts.Min()})" : "") +
           $"; max |log-prob difference| before divergence {maxLp:E2}";
}

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
