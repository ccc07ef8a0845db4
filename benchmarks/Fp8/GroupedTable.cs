// fp8bench's tables for the routed experts of both bench models (Fp8BenchShapes.RoutedExperts; uneven random
// counts around the mean tokens per expert, one expert empty):
//   grouped GEMMs alone, TFLOP/s: bf16 torch._grouped_mm vs the native FP8 grouped GEMMs (Triton cubins) on
//   pre-quantised operands, and with their quantisation (native kernels), for Fprop, Dgrad and Wgrad;
//   each quantiser in GB/s against a bf16 copy of its input in the same run;
//   the experts' forward+backward, ms: bf16 _grouped_mm vs FP8 per-expert _scaled_mm loop vs FP8 native grouped;
//   the whole SwiGLU FFN forward+backward, ms: bf16 (three _grouped_mm) vs FP8 as three grouped linears vs FP8 as one
//   function in one padded layout (Fp8.ExpertsFp8).
// FLOPs count the real rows only (not the 128-row padding of each expert's segment).
using PostTrain.Core.Kernels;
using PostTrain.Core.Precision;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Benchmarks.Fp8Tables;

internal static class GroupedTable
{
    // The native kernels on CUDA; on the CPU the reference kernels stand in (a smoke run of the same calls; its numbers
    // mean nothing).
    private static (IFp8Kernels? Kernels, string? Why) KernelsFor(Device device) =>
        device.type == DeviceType.CUDA ? Fp8Kernels.Native(device) : (ReferenceFp8Kernels.Instance, null);

    public static void Run(Device device, Generator gen, double scaleRows, Func<Func<Tensor>, double> time)
    {
        var (native, why) = KernelsFor(device);
        Console.WriteLine();
        Console.WriteLine(native is null
            ? $"Grouped FP8 kernels: unavailable ({why}); the native columns are left out."
            : device.type == DeviceType.CUDA ? $"Grouped FP8 kernels: native (libposttrain_kernels.so; {Fp8Kernels.NativeGroupedGemms(device)})."
            : "Grouped FP8 kernels: CPU smoke run with the reference kernels in the FP8 columns.");
        Console.WriteLine($"{"routed experts GEMM",-40} {"T",6} {"N",6} {"K",6} {"E",3} {"bf16 TF/s",10} {"fp8 TF/s",9} {"x",5} {"fp8+q TF/s",10} {"x",5}");
        var cases = RoutedCases(device, gen, scaleRows);
        foreach (var c in cases)
        {
            using var scope = NewDisposeScope();
            var x16 = c.X.to(ScalarType.BFloat16);
            var w16 = c.W.to(ScalarType.BFloat16);
            var dy16 = c.Dy.to(ScalarType.BFloat16);
            var offsets = c.Counts.cumsum(0, ScalarType.Int32);
            var rows = new (string Gemm, long N, long K, Func<Tensor> Bf16)[]
            {
                ("fprop", c.Out, c.In, () => PrecisionScripts.GroupedMm(x16, w16.transpose(1, 2), offsets)),
                ("dgrad", c.In, c.Out, () => PrecisionScripts.GroupedMm(dy16, w16, offsets)),
                ("wgrad", c.Out, c.In, () => PrecisionScripts.GroupedMm(dy16.t(), x16, offsets)),
            };
            foreach (var (gemm, n, k, bf16) in rows)
            {
                double flop = 2.0 * c.T * n * k;
                double tb = time(bf16);
                string fp8 = "", fp8q = "";
                if (native is not null)
                {
                    var (gemmOnly, withQuant) = NativeCalls(native, c, gemm);
                    double tf = time(gemmOnly), tq = time(withQuant);
                    fp8 = $"{flop / tf / 1e12,9:F1} {tb / tf,5:F2}";
                    fp8q = $"{flop / tq / 1e12,10:F1} {tb / tq,5:F2}";
                }
                Console.WriteLine($"{c.Name + " " + gemm,-40} {c.T,6} {n,6} {k,6} {c.Experts,3} {flop / tb / 1e12,10:F1} {fp8,15} {fp8q,16}");
            }
        }

        if (native is not null) QuantTable(native, cases, time);

        Console.WriteLine();
        Console.WriteLine($"{"routed experts forward+backward",-40} {"T",6} {"N",6} {"K",6} {"bf16 ms",9} {"fp8 loop ms",11} {"x",5} {"fp8 grouped ms",14} {"x",5}");
        foreach (var c in cases)
        {
            using var scope = NewDisposeScope();
            var x = c.X.to(ScalarType.BFloat16).requires_grad_(true);
            var w = nn.Parameter(c.W.to(ScalarType.BFloat16));
            var dy = c.Dy.to(ScalarType.BFloat16);
            double Pass(Func<Tensor> forward) => TimePass(time, forward, dy, x, w);
            double tb = Pass(() => Fp8.GroupedLinear(x, w, c.Counts, PostTrain.Core.Precision.Precision.Bf16));
            double tl = Pass(() => Fp8.GroupedLinearFp8(x, w, c.Counts, null));
            string grouped = native is null ? "" : FormatPass(tb, Pass(() => Fp8.GroupedLinearFp8(x, w, c.Counts, native)));
            Console.WriteLine($"{c.Name,-40} {c.T,6} {c.Out,6} {c.In,6} {tb * 1e3,9:F3} {tl * 1e3,11:F3} {tb / tl,5:F2} {grouped}");
        }
        if (native is not null)
        {
            Console.WriteLine();
            Console.WriteLine($"{"routed SwiGLU FFN forward+backward",-40} {"T",6} {"H",6} {"I",6} {"bf16 ms",9} {"fp8 3 linears",13} {"x",5} {"fp8 one fn ms",14} {"x",5}");
            foreach (var c in cases.Where(c => c.Name.EndsWith("gate/up", StringComparison.Ordinal)))
            {
                using var scope = NewDisposeScope();
                long e = c.Experts, h = c.In, inter = c.Out;
                var x = c.X.to(ScalarType.BFloat16).requires_grad_(true);
                var ws = new[] { (e, inter, h), (e, inter, h), (e, h, inter) }
                    .Select(s => nn.Parameter((randn([s.Item1, s.Item2, s.Item3], generator: gen) * 0.05).to(device).to(ScalarType.BFloat16))).ToArray();
                var dy = (randn([c.T, h], generator: gen) * 1e-3).to(device).to(ScalarType.BFloat16);
                double Pass(Func<Tensor> forward) => TimePass(time, forward, dy, [x, .. ws]);
                Tensor Three(Func<Tensor, Tensor, Tensor> linear) =>
                    linear(FusedOps.SiluMul(linear(x, ws[0]), linear(x, ws[1])), ws[2]);
                double tb = Pass(() => Three((a, w) => Fp8.GroupedLinear(a, w, c.Counts, PostTrain.Core.Precision.Precision.Bf16)));
                double t3 = Pass(() => Three((a, w) => Fp8.GroupedLinearFp8(a, w, c.Counts, native)));
                double t1 = Pass(() => Fp8.ExpertsFp8(x, ws[0], ws[1], ws[2], c.Counts, native, FusedKernels.For(x)));
                Console.WriteLine($"{c.Name.Replace(" gate/up", ""),-40} {c.T,6} {h,6} {inter,6} {tb * 1e3,9:F3} {t3 * 1e3,13:F3} {tb / t3,5:F2} {FormatPass(tb, t1)}");
            }
        }
        foreach (var c in cases) c.Dispose();
    }

    /// <summary>Only the quantiser table (fp8bench quant).</summary>
    public static void RunQuant(Device device, Generator gen, double scaleRows, Func<Func<Tensor>, double> time)
    {
        var (native, why) = KernelsFor(device);
        if (native is null)
        {
            Console.WriteLine($"Grouped FP8 kernels: unavailable ({why}).");
            return;
        }
        var cases = RoutedCases(device, gen, scaleRows);
        QuantTable(native, cases, time);
        foreach (var c in cases) c.Dispose();
    }

    // Each quantiser on the routed cases' operands (the padded expert layout, bf16 in), in GB/s of bytes read and
    // written, against a bf16 copy of the same input in the same run (what a memory-bound pass can reach here).
    private static void QuantTable(IFp8Kernels k, List<Case> cases, Func<Func<Tensor>, double> time)
    {
        Console.WriteLine();
        Console.WriteLine($"{"quantiser (bf16 in, fp8 + fp32 scales out)",-62} {"rows",7} {"cols",6} {"ms",8} {"GB/s",7} {"copy GB/s",9} {"x copy",6}");
        foreach (var c in cases)
        {
            using var scope = NewDisposeScope();
            var xp = c.Layout.Scatter(c.X.to(ScalarType.BFloat16));
            var w16 = c.W.to(ScalarType.BFloat16);
            var (qx, sx) = k.QuantRows(xp);
            long r = xp.shape[0], n = xp.shape[1], np = qx.shape[1];
            var rows = new (string What, long Rows, long Cols, double Bytes, Tensor Input, Func<Tensor> Run)[]
            {
                ("rows 1x128 (Fprop/Dgrad operand)", r, n, 2.0 * r * n + r * np + 4.0 * r * np / 128, xp, () => k.QuantRows(xp).Q),
                ("columns 1x128, transposed (Wgrad)", r, n, 2.0 * r * n + r * np + 4.0 * r * np / 128, xp, () => k.QuantColumns(xp).Q),
                ("requant fp8 -> transposed (Wgrad)", r, np, 1.0 * r * np + 4.0 * r * np / 128 + r * np + 4.0 * r * np / 128, qx, () => k.RequantColumns(qx, sx).Q),
                ("weight blocks 128x128 + transpose", w16.shape[0] * w16.shape[1], w16.shape[2], 2.0 * w16.numel() + 2.0 * w16.numel(), w16, () => k.QuantBlocksBoth(w16).Q),
            };
            foreach (var (what, rr, cc, bytes, input, run) in rows)
            {
                double tq = time(run);
                var dst = empty_like(input);
                double tc = time(() => dst.copy_(input));
                double copyBytes = 2.0 * input.numel() * input.element_size();
                double gq = bytes / tq / 1e9, gc = copyBytes / tc / 1e9;
                Console.WriteLine($"{c.Name + " " + what,-62} {rr,7} {cc,6} {tq * 1e3,8:F3} {gq,7:F0} {gc,9:F0} {gq / gc,6:F2}");
            }
        }
    }

    // Seconds of forward + backward from dy, the gradients of `leaves` zeroed after each pass.
    private static double TimePass(Func<Func<Tensor>, double> time, Func<Tensor> forward, Tensor dy, params Tensor[] leaves) =>
        time(() =>
        {
            forward().backward([dy]);
            foreach (var leaf in leaves) leaf.grad!.zero_();
            return leaves[0].grad!;
        });

    private static string FormatPass(double bf16, double t) => $"{t * 1e3,14:F3} {bf16 / t,5:F2}";

    // The native GEMM on operands quantised beforehand, and the same with the quantisation inside the timing.
    private static (Func<Tensor> GemmOnly, Func<Tensor> WithQuant) NativeCalls(IFp8Kernels k, Case c, string gemm)
    {
        var layout = c.Layout;
        var xp = layout.Scatter(c.X.to(ScalarType.BFloat16));
        var dyp = layout.Scatter(c.Dy.to(ScalarType.BFloat16));
        var w16 = c.W.to(ScalarType.BFloat16);
        switch (gemm)
        {
            case "fprop":
            {
                var (qx, sx) = k.QuantRows(xp);
                var (qw, sw) = k.QuantBlocks(w16);
                return (() => k.GemmMGrouped(qx, sx, qw, sw, layout.BlockExpert),
                    () =>
                    {
                        var (qa, sa) = k.QuantRows(xp);
                        var (qb, sb) = k.QuantBlocks(w16);
                        return k.GemmMGrouped(qa, sa, qb, sb, layout.BlockExpert);
                    });
            }
            case "dgrad":
            {
                var (qdy, sdy) = k.QuantRows(dyp);
                var (qw, sw) = k.QuantBlocks(w16);
                var qwT = qw.transpose(1, 2).contiguous();
                var swT = sw.transpose(1, 2).contiguous();
                return (() => k.GemmMGrouped(qdy, sdy, qwT, swT, layout.BlockExpert),
                    () =>
                    {
                        var (qa, sa) = k.QuantRows(dyp);
                        return k.GemmMGrouped(qa, sa, qwT, swT, layout.BlockExpert);   // weights: quantised once per step
                    });
            }
            default:
            {
                var (qx, sx) = k.QuantRows(xp);                                   // what the forward saved
                var (qdyT, sdyT) = k.QuantColumns(dyp);
                var (qxT, sxT) = k.RequantColumns(qx, sx);
                return (() => k.GemmKGrouped(qdyT, sdyT, qxT, sxT, layout.Segments),
                    () =>
                    {
                        var (qa, sa) = k.QuantColumns(dyp);
                        var (qb, sb) = k.RequantColumns(qx, sx);
                        return k.GemmKGrouped(qa, sa, qb, sb, layout.Segments);
                    });
            }
        }
    }

    private sealed record Case(string Name, long In, long Out, int Experts, long T, Tensor Counts, Tensor X, Tensor W, Tensor Dy, Fp8ExpertLayout Layout) : IDisposable
    {
        public void Dispose()
        {
            Layout.Dispose();
            foreach (var t in new[] { Counts, X, W, Dy }) t.Dispose();
        }
    }

    private static List<Case> RoutedCases(Device device, Generator gen, double scaleRows)
    {
        var cases = new List<Case>();
        foreach (var (name, inF, outF, experts, perExpert0) in Fp8BenchShapes.RoutedExperts)
        {
            long perExpert = Math.Max(16, (long)(perExpert0 * scaleRows));
            var counts = (rand([experts], generator: gen) * 2 * perExpert).to(ScalarType.Int64);
            counts[experts / 2] = tensor(0L);
            long t = counts.sum().item<long>();
            counts = counts.to(device);
            var x = randn([t, inF], generator: gen).to(device);
            var w = (randn([experts, outF, inF], generator: gen) * 0.05).to(device);
            var dy = (randn([t, outF], generator: gen) * 1e-3).to(device);
            cases.Add(new Case(name, inF, outF, experts, t, counts, x, w, dy, Fp8ExpertLayout.Build(counts, t)));
        }
        return cases;
    }
}
