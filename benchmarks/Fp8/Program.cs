// fp8bench: FP8 blockwise GEMM throughput against bf16 matmul for the bench model's shapes, and the GPU
// self-check of the FP8 path.
//   fp8bench [bench] [--tokens N] [--iters N]   tables of TFLOP/s and ms (CUDA) or a tiny smoke run (CPU): dense
//                                               GEMMs and layers, then the routed experts (GroupedTable)
//   fp8bench check                              Fp8SelfCheck on cuda:0 (exit code 1 on any failure)
// On CPU the FP8 path is an emulation (dequantise + FP32 matmul): its numbers say nothing about FP8 speed.
using System.Diagnostics;
using PostTrain.Core.Precision;
using TorchSharp;
using static TorchSharp.torch;
using P = PostTrain.Core.Precision.Precision;

bool onCuda = cuda_is_available();
var device = onCuda ? CUDA : CPU;
string mode = args.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal)) ?? "bench";
long tokens = Option("--tokens", onCuda ? Fp8BenchShapes.Tokens : 128);
int iters = (int)Option("--iters", onCuda ? 20 : 1);

if (mode == "check")
    return Fp8SelfCheck.Run(device) ? 0 : 1;
if (mode == "quant")
{
    PostTrain.Benchmarks.Fp8Tables.GroupedTable.RunQuant(device, new Generator(7), (double)tokens / Fp8BenchShapes.Tokens, Time);
    return 0;
}
if (mode != "bench")
{
    Console.Error.WriteLine($"fp8bench: unknown mode '{mode}' (bench | check | quant).");
    return 2;
}

Console.WriteLine(onCuda
    ? $"CUDA: {tokens} tokens, {iters} timed iterations per row, FP8 = torch._scaled_mm (1x128 x 128x128 / 1x128 x 1x128), bf16 = mm."
    : $"CPU: tiny smoke run ({tokens} tokens). FP8 is emulated on CPU; these numbers are not FP8 speed.");
double scaleRows = (double)tokens / Fp8BenchShapes.Tokens;
var gen = new Generator(7);

// The card's ceilings in this run, for every TF/s below: bf16 mm and blockwise FP8 _scaled_mm (1x128 tiles x 128x128
// blocks, quantised beforehand) on one large square product (CPU: a small smoke size).
{
    using var scope = NewDisposeScope();
    long n = onCuda ? 8192 : 256;
    var a = randn([n, n], generator: gen).to(device);
    var b = (randn([n, n], generator: gen) * 0.05).to(device);
    var (rowMul, kMul) = Fp8Gemm.Alignment(device);
    var (qa, sa) = Fp8.QuantizeTiles(a, rowMul, kMul);
    var (qb, sb) = Fp8.QuantizeBlocks(b, kMul, kMul);
    var a16 = a.to(ScalarType.BFloat16);
    var b16 = b.to(ScalarType.BFloat16);
    double flop = 2.0 * n * n * n;
    double bf16 = flop / Time(() => a16.mm(b16.t())) / 1e12;
    double fp8 = flop / Time(() => Fp8Gemm.Multiply(qa, sa, qb, sb, Fp8Layout.Blocks128x128, n, n)) / 1e12;
    Console.WriteLine($"ceiling {n}^3: bf16 mm {bf16:F1} TF/s, FP8 blockwise _scaled_mm {fp8:F1} TF/s ({fp8 / bf16:F2}x)");
}

Console.WriteLine();
Console.WriteLine($"{"layer / GEMM",-36} {"M",6} {"N",6} {"K",6} {"bf16 TF/s",10} {"fp8 TF/s",9} {"x",5} {"fp8+q TF/s",10} {"x",5}");
foreach (var (name, inF, outF, rows0) in Fp8BenchShapes.Linears)
{
    long rows = Math.Max(16, (long)(rows0 * scaleRows));
    // (GEMM, output rows, output cols, contraction, B scaled per 128x128 block?)
    var gemms = new (string Gemm, long M, long N, long K, bool Blocks)[]
    {
        ("fprop", rows, outF, inF, true),
        ("dgrad", rows, inF, outF, true),
        ("wgrad", outF, inF, rows, false),
    };
    foreach (var g in gemms)
    {
        using var scope = NewDisposeScope();
        var a = randn([g.M, g.K], generator: gen).to(device);
        var b = (randn([g.N, g.K], generator: gen) * 0.05).to(device);
        var (rowMul, kMul) = Fp8Gemm.Alignment(device);
        var (qa, sa) = Fp8.QuantizeTiles(a, rowMul, kMul);
        var (qb, sb) = g.Blocks ? Fp8.QuantizeBlocks(b, kMul, kMul) : Fp8.QuantizeTiles(b, rowMul, kMul);
        var layout = g.Blocks ? Fp8Layout.Blocks128x128 : Fp8Layout.Tiles1x128;
        var a16 = a.to(ScalarType.BFloat16);
        var b16 = b.to(ScalarType.BFloat16);
        double flop = 2.0 * g.M * g.N * g.K;

        double tBf16 = Time(() => a16.mm(b16.t()));
        double tFp8 = Time(() => Fp8Gemm.Multiply(qa, sa, qb, sb, layout, g.M, g.N));
        double tFp8Q = Time(() =>
        {
            var (qa2, sa2) = Fp8.QuantizeTiles(a, rowMul, kMul);
            var (qb2, sb2) = g.Blocks ? Fp8.QuantizeBlocks(b, kMul, kMul) : Fp8.QuantizeTiles(b, rowMul, kMul);
            return Fp8Gemm.Multiply(qa2, sa2, qb2, sb2, layout, g.M, g.N);
        });
        Console.WriteLine($"{name + " " + g.Gemm,-36} {g.M,6} {g.N,6} {g.K,6} {flop / tBf16 / 1e12,10:F1} {flop / tFp8 / 1e12,9:F1} {tBf16 / tFp8,5:F2} {flop / tFp8Q / 1e12,10:F1} {tBf16 / tFp8Q,5:F2}");
    }
}

Console.WriteLine();
Console.WriteLine($"{"layer forward+backward",-36} {"M",6} {"N",6} {"K",6} {"bf16 ms",10} {"fp8 ms",9} {"x",5}");
foreach (var (name, inF, outF, rows0) in Fp8BenchShapes.Linears)
{
    long rows = Math.Max(16, (long)(rows0 * scaleRows));
    using var scope = NewDisposeScope();
    var x = randn([rows, inF], generator: gen).to(device).requires_grad_(true);
    var w = nn.Parameter((randn([outF, inF], generator: gen) * 0.05).to(device));
    var dy = randn([rows, outF], generator: gen).to(device);
    double LayerTime(P p) => Time(() =>
    {
        LinearOps.Linear(x, w, null, p).backward([dy]);
        x.grad!.zero_();
        w.grad!.zero_();
        return x.grad;
    });
    double tb = LayerTime(P.Bf16), tf = LayerTime(P.Fp8);
    Console.WriteLine($"{name,-36} {rows,6} {outF,6} {inF,6} {tb * 1e3,10:F3} {tf * 1e3,9:F3} {tb / tf,5:F2}");
}

PostTrain.Benchmarks.Fp8Tables.GroupedTable.Run(device, gen, scaleRows, Time);
return 0;

// Seconds per call: 3 warm-up calls, then `iters` timed calls, each in its own dispose scope.
double Time(Func<Tensor> call)
{
    for (int i = 0; i < 3; i++)
    {
        using var warm = NewDisposeScope();
        call();
    }
    Sync();
    var sw = Stopwatch.StartNew();
    for (int i = 0; i < iters; i++)
    {
        using var s = NewDisposeScope();
        call();
    }
    Sync();
    return sw.Elapsed.TotalSeconds / iters;
}

void Sync()
{
    if (onCuda)
        cuda.synchronize();
}

long Option(string name, long fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length && long.TryParse(args[i + 1], out var v) ? v : fallback;
}
