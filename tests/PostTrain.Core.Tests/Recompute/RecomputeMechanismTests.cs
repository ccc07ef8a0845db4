// ActivationRecompute.Run on small hand-written regions (fp64), against the same function differentiated by plain
// autograd: the first pass runs with autograd off (so nothing inside the region is kept for backward) and the replay
// in backward with it on; input and parameter gradients equal plain autograd's; a frozen input still trains the
// region's parameters; an unused output, a null input, nested regions and a forward without autograd work.
using PostTrain.Core.Recompute;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Recompute;

public sealed class RecomputeMechanismTests
{
    private sealed class Probe
    {
        public List<bool> GradEnabled { get; } = [];

        // y = tanh(x W^T) * s + x.sum(-1, keepdim) ; z = (y * y).mean(): two outputs, both depending on x and W
        public Tensor[] Fn(Tensor?[] a, Parameter w, Tensor? scale = null)
        {
            GradEnabled.Add(is_grad_enabled());
            var y = tanh(a[0]!.matmul(w.t()));
            if (a.Length > 1 && a[1] is { } s) y = y * s;
            y = y + a[0]!.sum(-1, keepdim: true);
            return [y, (y * y).mean()];
        }
    }

    private static (Tensor X, Parameter W, Tensor Dy) Data(bool xGrad = true)
    {
        var g = new Generator(3);
        var x = randn([4, 5], dtype: ScalarType.Float64, generator: g).requires_grad_(xGrad);
        var w = new Parameter(randn([3, 5], dtype: ScalarType.Float64, generator: g));
        var dy = randn([4, 3], dtype: ScalarType.Float64, generator: g);
        return (x, w, dy);
    }

    private static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        double err = (expected - actual).abs().max().item<double>(), scale = expected.abs().max().item<double>();
        Assert.True(err <= 1e-12 * Math.Max(1, scale), $"{what}: max |diff| {err:E3} (max |value| {scale:E3})");
    }

    [Fact]
    public void First_pass_runs_without_autograd_and_the_replay_gives_plain_autograds_gradients()
    {
        var (x, w, dy) = Data();
        var plain = new Probe();
        var p = plain.Fn([x], w);
        (p[0] * dy).sum().add(p[1] * 3).backward();
        var (gx, gw) = (x.grad!.clone(), w.grad!.clone());
        x.grad!.zero_(); w.grad!.zero_();

        var probe = new Probe();
        long before = ActivationRecompute.ReplaysOnThisThread;
        var r = ActivationRecompute.Run(a => probe.Fn(a, w), [x], [w]);
        Assert.Equal([false], probe.GradEnabled);            // nothing recorded inside the region during forward
        Assert.True(r[0].requires_grad && r[1].requires_grad);
        AssertClose(p[0].detach(), r[0].detach(), "output");
        (r[0] * dy).sum().add(r[1] * 3).backward();
        Assert.Equal([false, true], probe.GradEnabled);      // the replay in backward records
        Assert.Equal(before + 1, ActivationRecompute.ReplaysOnThisThread);
        AssertClose(gx, x.grad!, "dL/dx");
        AssertClose(gw, w.grad!, "dL/dW");
    }

    [Fact]
    public void A_frozen_input_still_trains_the_parameters_and_an_unused_output_is_skipped()
    {
        var (x, w, dy) = Data(xGrad: false);
        var p = new Probe().Fn([x], w);
        (p[0] * dy).sum().backward();                        // the scalar output is not used
        var gw = w.grad!.clone();
        w.grad!.zero_();

        var r = ActivationRecompute.Run(a => new Probe().Fn(a, w), [x], [w]);
        Assert.True(r[0].requires_grad);                     // through the parameter alone
        (r[0] * dy).sum().backward();
        AssertClose(gw, w.grad!, "dL/dW");
        Assert.Null(x.grad);
    }

    [Fact]
    public void Null_inputs_pass_through_and_frozen_parameters_get_no_gradient()
    {
        var (x, w, dy) = Data();
        var frozen = new Parameter(full(3, 2.0, dtype: ScalarType.Float64), requires_grad: false);
        var p = new Probe().Fn([x, null], w, frozen);
        (p[0] * dy).sum().backward();
        var gx = x.grad!.clone();
        x.grad!.zero_(); w.grad!.zero_();

        var probe = new Probe();
        var r = ActivationRecompute.Run(a => probe.Fn(a, w), [x, null], [w, frozen]);
        (r[0] * dy).sum().backward();
        AssertClose(gx, x.grad!, "dL/dx");
        Assert.Null(frozen.grad);
        Assert.Equal(2, probe.GradEnabled.Count);
    }

    [Fact]
    public void Nested_regions_run_inline_and_without_autograd_the_region_runs_once()
    {
        var (x, w, dy) = Data();
        var inner = new Probe();
        var r = ActivationRecompute.Run(a => ActivationRecompute.Run(b => inner.Fn(b, w), a, [w]), [x], [w]);
        (r[0] * dy).sum().backward();
        Assert.Equal([false, true], inner.GradEnabled);      // once per pass: the inner call did not make a node

        var once = new Probe();
        using (no_grad())
        {
            var y = ActivationRecompute.Run(a => once.Fn(a, w), [x], [w]);
            Assert.False(y[0].requires_grad);
        }
        Assert.Equal([false], once.GradEnabled);
    }
}
