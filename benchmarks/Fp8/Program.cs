using System.Diagnostics;
using PostTrain.Core.Precision;
using TorchSharp;
using static TorchSharp.torch;
using P = PostTrain.Core.Precision.Precision;


foreach (var seed in new[] { 2 })
{
    var res = new Dictionary<P, double>();
    foreach (var p in new[] { P.Bf16, P.Fp8 })
    {
        var sw = Stopwatch.StartNew();
        var gen = manual_seed(seed);
        const int In = 136, H = 192, Out = 4, B = 64, Steps = 200;
        var t1 = randn(H, In) / Math.Sqrt(In); var t2 = randn(Out, H) / Math.Sqrt(H);
        var xs = randn(Steps, B, In);
        var ys = nn.functional.gelu(xs.matmul(t1.t())).matmul(t2.t()) * 2 + randn(Steps, B, Out) * 0.3;
        var w1 = nn.Parameter(randn(H, In) / Math.Sqrt(In)); var b1 = nn.Parameter(zeros(H));
        var w2 = nn.Parameter(randn(Out, H) / Math.Sqrt(H)); var b2 = nn.Parameter(zeros(Out));
        using var opt = new AdamW([w1, b1, w2, b2], lr: 3e-3, weightDecay: 0);
        var losses = new List<double>();
        for (int s = 0; s < Steps; s++)
        {
            using var scope = NewDisposeScope();
            var h = nn.functional.gelu(LinearOps.Linear(xs[s], w1, b1, p));
            var y = LinearOps.Linear(h, w2, b2, p);
            var loss = nn.functional.mse_loss(y, ys[s]);
            loss.backward(); opt.Step(); opt.ZeroGrad();
            losses.Add(loss.item<float>());
        }
        res[p] = losses.Skip(Steps - 20).Average();
        Console.WriteLine($"seed {seed} {p}: first {losses[0]:F4} final {res[p]:F5} ({sw.ElapsedMilliseconds} ms)");
    }
    Console.WriteLine($"   rel fp8 vs bf16 {Math.Abs(res[P.Fp8] - res[P.Bf16]) / res[P.Bf16]:P3}");
}
