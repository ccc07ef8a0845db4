using System.Diagnostics;
using PostTrain.Core.Precision;
using TorchSharp;
using static TorchSharp.torch;
using P = PostTrain.Core.Precision.Precision;

var x = randn(1024, 768);
for (int r = 0; r < 3; r++)
{
    var sw = Stopwatch.StartNew();
    using (var s = NewDisposeScope()) { var (q, sc) = Fp8.QuantizeActTiles(x); }
    Console.WriteLine($"quant tiles 1024x768: {sw.ElapsedMilliseconds} ms");
    sw.Restart();
    using (var s = NewDisposeScope()) { var t = x.clamp(-448, 448).to(Fp8.Float8E4M3); }
    Console.WriteLine($"cast only: {sw.ElapsedMilliseconds} ms");
    sw.Restart();
    using (var s = NewDisposeScope()) { var t = x.to(Fp8.Float8E4M3).to(ScalarType.Float32); }
    Console.WriteLine($"cast there and back: {sw.ElapsedMilliseconds} ms");
    sw.Restart();
    using (var s = NewDisposeScope()) { var t = x.abs().view(1024, 6, 128).amax([-1], keepdim: true); }
    Console.WriteLine($"amax: {sw.ElapsedMilliseconds} ms");
    sw.Restart();
    using (var s = NewDisposeScope()) { var w = nn.Parameter(randn(384, 768)); var xx = x.clone().requires_grad_(true); LinearOps.Linear(xx, w, null, P.Fp8).backward([ones(1024, 384)]); }
    Console.WriteLine($"fp8 linear fwd+bwd 1024x768x384: {sw.ElapsedMilliseconds} ms");
    sw.Restart();
    using (var s = NewDisposeScope()) { var w = nn.Parameter(randn(384, 768)); var xx = x.clone().requires_grad_(true); LinearOps.Linear(xx, w, null, P.Fp32).backward([ones(1024, 384)]); }
    Console.WriteLine($"fp32 linear fwd+bwd: {sw.ElapsedMilliseconds} ms");
}
