// GPU self-check of the FP8 path: for every GEMM shape of the bench model (Fp8BenchShapes, with the token
// count made a non-multiple of 128 so padding is exercised, and N != K throughout), compares on a CUDA
// device (1) the GPU quantisers with the CPU ones, (2) _scaled_mm against the CPU emulation on the very
// same FP8 operands for the forward, Dgrad and Wgrad contractions (bf16 and, if the build accepts it, fp32
// output), (3) LinearOps.Linear(Fp8) forward+backward GPU vs CPU, (4) GroupedLinear for all three
// precisions GPU vs CPU (on the GPU, FP8 takes the native grouped kernels when they passed their self-check) and
// (5) the native grouped FP8 kernels against the reference kernels on the GPU at both bench models' expert shapes. Prints one line per check with the max relative error (max |gpu - cpu| / max |cpu|)
// and returns whether everything passed. Run it from `fp8bench check` on the GPU machine.
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Precision;

public static class Fp8SelfCheck
{
    // Fp32Bound: the H100's FP8 tensor cores accumulate with limited precision (DeepSeek-V3 reports ~14 bits on H800),
    // so fp32-output products differ from the CPU's exact fp32 accumulation by up to ~8e-4 relative (measured).
    private const double Bf16Bound = 1e-2, Fp32Bound = 2e-3, LayerBound = 2e-2;

    public static bool Run(Device device, TextWriter? output = null, long tokenOffset = -24)
    {
        var log = output ?? Console.Out;
        if (device.type != DeviceType.CUDA)
        {
            log.WriteLine($"Fp8SelfCheck compares CUDA against the CPU emulation; {device} is not a CUDA device.");
            return false;
        }
        var cpu = CPU;
        bool ok = true;
        var gen = new Generator(1234);
        log.WriteLine($"{"check",-34} {"shape",-34} {"rel.err",10} {"bound",8}  result");
        void Report(string check, string shape, double err, double bound)
        {
            bool pass = err <= bound && !double.IsNaN(err);
            ok &= pass;
            log.WriteLine($"{check,-34} {shape,-34} {err,10:E2} {bound,8:E0}  {(pass ? "ok" : "FAIL")}");
        }
        void Failed(string check, string shape, Exception e)
        {
            ok = false;
            log.WriteLine($"{check,-34} {shape,-34} {"error",10} {"",8}  FAIL: {e.Message.Split('\n')[0]}");
        }

        foreach (var (name, inF, outF, rows) in Fp8BenchShapes.Linears)
        {
            long m = rows + tokenOffset, k = inF, n = outF;
            string shape = $"{name} M={m} N={n} K={k}";
            using var scope = NewDisposeScope();
            var x = randn([m, k], generator: gen);
            x[.., 3] *= 30;                                                                  // an outlier channel
            var w = randn([n, k], generator: gen) * 0.05;
            var dy = randn([m, n], generator: gen) * 1e-3;

            // (1) quantisers
            var (qxG, sxG) = Fp8.QuantizeActTiles(x.to(device));
            var (qxC, sxC) = Fp8.QuantizeActTiles(x);
            Report("quantise 1x128 (gpu vs cpu)", shape, RelErr(Fp8.DequantizeActTiles(qxG, sxG, k).cpu(), Fp8.DequantizeActTiles(qxC, sxC, k)), 0);
            var (qwG, swG) = Fp8.QuantizeWeightBlocks(w.to(device));
            var (qwC, swC) = Fp8.QuantizeWeightBlocks(w);
            Report("quantise 128x128 (gpu vs cpu)", shape, RelErr(Fp8.DequantizeWeightBlocks(qwG, swG, n, k).cpu(), Fp8.DequantizeWeightBlocks(qwC, swC, n, k)), 0);

            // (2) the three contractions on identical FP8 operands
            var (qdy, sdy) = Fp8.QuantizeActTiles(dy.to(device));
            var (qdyT, sdyT) = Fp8.QuantizeActTiles(dy.t().to(device));
            var (qxT, sxT) = Fp8.QuantizeActTiles(x.t().to(device));
            var gemms = new (string Name, Tensor Qa, Tensor Sa, Tensor Qb, Tensor Sb, Fp8Layout Layout, long Rows, long Cols)[]
            {
                ("fprop  y = x W^T", qxG, sxG, qwG, swG, Fp8Layout.Blocks128x128, m, n),
                ("dgrad dX = dY W", qdy, sdy, qwG.t().contiguous(), swG.t().contiguous(), Fp8Layout.Blocks128x128, m, k),
                ("wgrad dW = dY^T X", qdyT, sdyT, qxT, sxT, Fp8Layout.Tiles1x128, n, k),
            };
            foreach (var g in gemms)
            {
                var reference = Fp8Gemm.Emulate(g.Qa.cpu(), g.Sa.cpu(), g.Qb.cpu(), g.Sb.cpu(), g.Layout, g.Rows, g.Cols);
                foreach (var (outType, bound) in new[] { (ScalarType.BFloat16, Bf16Bound), (ScalarType.Float32, Fp32Bound) })
                {
                    string check = $"_scaled_mm {g.Name} ({(outType == ScalarType.BFloat16 ? "bf16" : "fp32")})";
                    try
                    {
                        var c = Fp8Gemm.ScaledMm(g.Qa, g.Sa, g.Qb, g.Sb, g.Layout, g.Rows, g.Cols, outType);
                        Report(check, shape, RelErr(c.to(ScalarType.Float32).cpu(), reference), bound);
                    }
                    catch (Exception e) when (outType == ScalarType.Float32)
                    {
                        log.WriteLine($"{check,-34} {shape,-34} {"n/a",10} {"",8}  fp32 output unsupported here ({e.Message.Split('\n')[0]}); keep GpuOutputType = BFloat16");
                    }
                }
            }

            // (3) the whole FP8 layer, forward and backward
            try
            {
                var (yG, dxG, dwG) = LayerGrads(x, w, dy, device);
                var (yC, dxC, dwC) = LayerGrads(x, w, dy, cpu);
                Report("LinearOps.Linear Fp8 y", shape, RelErr(yG, yC), LayerBound);
                Report("LinearOps.Linear Fp8 dX", shape, RelErr(dxG, dxC), LayerBound);
                Report("LinearOps.Linear Fp8 dW", shape, RelErr(dwG, dwC), LayerBound);
            }
            catch (Exception e)
            {
                Failed("LinearOps.Linear Fp8", shape, e);
            }
        }

        // (4) MoE experts: uneven counts over Experts, one expert empty.
        foreach (var (name, inF, outF, rows) in Fp8BenchShapes.Linears.Where(s => s.Name.StartsWith("experts.", StringComparison.Ordinal)))
        {
            using var scope = NewDisposeScope();
            var counts = (rand([Fp8BenchShapes.Experts], generator: gen) * 2 * rows).to(ScalarType.Int64);
            counts[5] = tensor(0L);
            long t = counts.sum().item<long>();
            var x = randn([t, inF], generator: gen);
            var w = randn([Fp8BenchShapes.Experts, outF, inF], generator: gen) * 0.05;
            var dy = randn([t, outF], generator: gen) * 1e-3;
            string shape = $"{name} T={t} E={Fp8BenchShapes.Experts}";
            foreach (var p in new[] { Precision.Fp8, Precision.Bf16, Precision.Fp32 })
            {
                try
                {
                    var (yG, dxG, dwG) = GroupedGrads(x, w, counts, dy, p, device);
                    var (yC, dxC, dwC) = GroupedGrads(x, w, counts, dy, p, cpu);
                    double bound = p == Precision.Fp32 ? 1e-3 : LayerBound;
                    Report($"GroupedLinear {p} y", shape, RelErr(yG, yC), bound);
                    Report($"GroupedLinear {p} dX", shape, RelErr(dxG, dxC), bound);
                    Report($"GroupedLinear {p} dW", shape, RelErr(dwG, dwC), bound);
                }
                catch (Exception e)
                {
                    Failed($"GroupedLinear {p}", shape, e);
                }
            }
        }
        // (5) the native grouped kernels (Fp8AlignedGroupedFunction over NativeFp8Kernels) against the reference kernels
        // on the same GPU, forward and both gradients, at the routed-expert shapes of both bench models.
        var (native, why) = Kernels.Fp8Kernels.Native(device);
        if (native is null)
        {
            ok = false;
            log.WriteLine($"{"native grouped FP8 kernels",-34} {"",-34} {"n/a",10} {"",8}  FAIL: {why}");
        }
        else
        {
            log.WriteLine($"native FP8 kernels: {Kernels.Fp8Kernels.NativeGroupedGemms(device)}");
            var (failure, gemms) = Kernels.Fp8Kernels.SelfCheckNative(native, device);
            log.WriteLine($"native FP8 kernels' own self-check: {failure ?? "passed"}{(gemms is null ? "" : $" ({gemms})")}");
            foreach (var (name, inF, outF, experts, perExpert) in Fp8BenchShapes.RoutedExperts)
            {
                using var scope = NewDisposeScope();
                var counts = (rand([experts], generator: gen) * 2 * perExpert).to(ScalarType.Int64);
                counts[experts / 2] = tensor(0L);
                long t = counts.sum().item<long>();
                var x = randn([t, inF], generator: gen).to(ScalarType.BFloat16);
                var w = (randn([experts, outF, inF], generator: gen) * 0.05).to(ScalarType.BFloat16);
                var dy = (randn([t, outF], generator: gen) * 1e-3).to(ScalarType.BFloat16);
                string shape = $"{name} T={t} E={experts}";
                try
                {
                    var (yN, dxN, dwN) = AlignedGrads(x, w, counts, dy, native, device);
                    var (yR, dxR, dwR) = AlignedGrads(x, w, counts, dy, Kernels.ReferenceFp8Kernels.Instance, device);
                    Report("grouped FP8 native y", shape, RelErr(yN, yR), LayerBound);
                    Report("grouped FP8 native dX", shape, RelErr(dxN, dxR), LayerBound);
                    Report("grouped FP8 native dW", shape, RelErr(dwN, dwR), LayerBound);
                }
                catch (Exception e)
                {
                    Failed("grouped FP8 native", shape, e);
                }
            }
        }
        log.WriteLine(ok ? "Fp8SelfCheck: all checks passed." : "Fp8SelfCheck: FAILURES above.");
        return ok;
    }

    private static double RelErr(Tensor actual, Tensor reference)
    {
        double scale = reference.abs().max().to(ScalarType.Float64).item<double>();
        double diff = (actual.to(ScalarType.Float64) - reference.to(ScalarType.Float64)).abs().max().item<double>();
        return scale == 0 ? diff : diff / scale;
    }

    private static (Tensor y, Tensor dx, Tensor dw) LayerGrads(Tensor x0, Tensor w0, Tensor dy, Device device)
    {
        // detach: on the CPU .to() returns the same tensor, which must not become a grad-requiring input of later runs
        var x = x0.detach().to(device).requires_grad_(true);
        var w = nn.Parameter(w0.detach().to(device));
        var y = LinearOps.Linear(x, w, null, Precision.Fp8);
        y.backward([dy.to(device)]);
        return (y.detach().cpu(), x.grad!.cpu(), w.grad!.cpu());
    }

    private static (Tensor y, Tensor dx, Tensor dw) AlignedGrads(Tensor x0, Tensor w0, Tensor counts, Tensor dy, Kernels.IFp8Kernels kernels, Device device)
    {
        var x = x0.detach().to(device).requires_grad_(true);
        var w = nn.Parameter(w0.detach().to(device));
        var y = Fp8.GroupedLinearFp8(x, w, counts.to(device), kernels);
        y.backward([dy.to(device)]);
        return (y.detach().to(ScalarType.Float32).cpu(), x.grad!.to(ScalarType.Float32).cpu(), w.grad!.to(ScalarType.Float32).cpu());
    }

    private static (Tensor y, Tensor dx, Tensor dw) GroupedGrads(Tensor x0, Tensor w0, Tensor counts, Tensor dy, Precision p, Device device)
    {
        var x = x0.detach().to(device).requires_grad_(true);
        var w = nn.Parameter(w0.detach().to(device));
        var y = Fp8.GroupedLinear(x, w, counts.to(device), p);
        y.backward([dy.to(device)]);
        return (y.detach().cpu(), x.grad!.cpu(), w.grad!.cpu());
    }
}
