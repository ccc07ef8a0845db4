using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Model;

public sealed class RotaryTests
{
    [Fact]
    public void DefaultFrequenciesAreThetaPowers()
    {
        var c = BuiltinModels.Micro() with { QkRopeHeadDim = 8, RopeTheta = 10000 };
        var (inv, attn) = Rotary.ComputeInvFreq(c);
        double[] expected = [1, 0.1, 0.01, 0.001];      // 10000^(-2i/8)
        for (int i = 0; i < 4; i++) Assert.Equal(expected[i], inv[i], 1e-6 * expected[i] + 1e-9);
        Assert.Equal(1.0, attn);
    }

    [Fact]
    public void YarnBlendsInterpolationAndExtrapolationByTheRamp()
    {
        // d = 8, theta = 10000, L0 = 64, factor 4, beta_fast 32, beta_slow 1.
        // corr(r) = 8 ln(64 / (2 pi r)) / (2 ln 10000): corr(32) = -0.397 -> floor -1 -> clamp 0; corr(1) = 1.008 -> ceil 2.
        // ramp(i) = clamp((i - 0) / 2, 0, 1) = [0, .5, 1, 1]; inv = inv/4 * ramp + inv * (1 - ramp).
        var c = BuiltinModels.Micro() with { QkRopeHeadDim = 8, RopeTheta = 10000, Yarn = new YarnScaling(4, 64, 32, 1, 1.0, 1.0) };
        var (inv, attn) = Rotary.ComputeInvFreq(c);
        double[] baseF = [1, 0.1, 0.01, 0.001];
        double[] ramp = [0, 0.5, 1, 1];
        for (int i = 0; i < 4; i++)
            Assert.Equal(baseF[i] / 4 * ramp[i] + baseF[i] * (1 - ramp[i]), inv[i], 1e-6 * baseF[i]);
        Assert.Equal(1.0, attn, 12); // mscale == mscale_all_dim: the two factors cancel
        var c2 = c with { Yarn = c.Yarn! with { Mscale = null, MscaleAllDim = null } };
        Assert.Equal(0.1 * Math.Log(4) + 1, Rotary.ComputeInvFreq(c2).AttentionFactor, 12);
    }

    [Fact]
    public void InterleavedRotationRotatesPairsAndDeinterleaves()
    {
        var c = BuiltinModels.Micro() with { QkRopeHeadDim = 4, RopeTheta = 100 };
        var r = new Rotary(c);
        // one position p = 1: angles = [1, 0.1] (inv freq 100^0, 100^-0.5)
        var (cos, sin) = r.Angles(tensor(new long[] { 1 }).view(1, 1));
        var x = tensor(new float[] { 1, 2, 3, 4 }).view(1, 1, 1, 4);   // pairs (1,2), (3,4)
        var y = r.Apply(x, cos, sin).data<float>().ToArray();
        double c0 = Math.Cos(1), s0 = Math.Sin(1), c1 = Math.Cos(0.1), s1 = Math.Sin(0.1);
        double[] expected = [1 * c0 - 2 * s0, 3 * c1 - 4 * s1, 2 * c0 + 1 * s0, 4 * c1 + 3 * s1];
        for (int i = 0; i < 4; i++) Assert.Equal(expected[i], y[i], 1e-6);
    }
}
