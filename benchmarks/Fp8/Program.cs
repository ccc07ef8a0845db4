using TorchSharp;
using static TorchSharp.torch;

var f8 = (ScalarType)24;
var x = torch.tensor(new float[] { 0f, 1.0625f, 17f, 300f, 440f, 500f, 0.001953125f, 0.0009765625f, -3.3f });
Console.WriteLine(string.Join(",", x.to(f8).to(ScalarType.Float32).data<float>().ToArray()));
var a = torch.randn(256, 512).to(f8);
var b = torch.randn(384, 512).to(f8);
string src = @"
def f(a, b, sa, sb):
    return torch._scaled_mm(a, b.t(), sa, sb, out_dtype=6)
def g(a, b, offs):
    return torch._grouped_mm(a, b, offs)
";
var cu = torch.jit.compile(src);
try {
  var sa = torch.ones(1); var sb = torch.ones(1);
  var r = (Tensor)cu.invoke("f", a, b, sa, sb);
  Console.WriteLine("tensorwise ok " + string.Join(",", r.shape));
} catch (Exception e) { Console.WriteLine("tw fail " + e.Message.Split('\n')[0]); }
try {
  var sa = torch.ones(256, 4).t().contiguous().t(); var sb = torch.ones(3, 4).t();
  var r = (Tensor)cu.invoke("f", a, b, sa, sb);
  Console.WriteLine("blockwise ok " + string.Join(",", r.shape));
} catch (Exception e) { Console.WriteLine("bw fail " + e.Message.Split('\n')[0]); }
try {
  var xa = torch.randn(10, 16, requires_grad: true); var w = torch.randn(3, 8, 16, requires_grad: true);
  var offs = torch.tensor(new int[] { 3, 3, 10 });
  var r = (Tensor)cu.invoke("g", xa, w.transpose(-2, -1), offs);
  Console.WriteLine("grouped fp32 ok " + string.Join(",", r.shape));
  var refy = torch.cat(new[] { xa[..3].matmul(w[0].t()), xa[3..3].matmul(w[1].t()), xa[3..10].matmul(w[2].t()) });
  Console.WriteLine("diff " + (r - refy).abs().max().item<float>());
  r.backward(new[] { torch.ones_like(r) });
  Console.WriteLine("grad ok " + w.grad!.abs().sum().item<float>());
} catch (Exception e) { Console.WriteLine("grouped fail " + e.Message.Split('\n')[0]); }
