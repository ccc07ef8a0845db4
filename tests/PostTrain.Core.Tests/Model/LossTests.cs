using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Model;

public sealed class LossTests
{
    [Fact]
    public void CrossEntropyIgnoresMaskedTargets()
    {
        // two positions, vocab 3: logits [0, ln 2, 0] target 1 -> -ln(2/4) = ln 2; second ignored
        var logits = tensor(new float[] { 0, (float)Math.Log(2), 0, 5, 5, 5 }).view(1, 2, 3);
        var labels = tensor(new long[] { 1, -100 }).view(1, 2);
        var (sum, count) = Losses.CrossEntropySum(logits, labels);
        Assert.Equal(1, count);
        Assert.Equal(Math.Log(2), sum.item<float>(), 5);
    }

    [Fact]
    public void MtpLabelsShiftAndStayInsideTheExample()
    {
        // labels aligned with inputs; two packed examples: positions 0-2 and 3-5
        var labels = tensor(new long[] { 11, 12, -100, 21, 22, -100 }).view(1, 6);
        var seg = tensor(new long[] { 0, 0, 0, 1, 1, 1 }).view(1, 6);
        var k1 = Losses.MtpLabels(labels, 1, seg).data<long>().ToArray();
        // position t predicts labels[t+1] when t and t+1 share a segment
        Assert.Equal(new long[] { 12, -100, -100, 22, -100 }, k1);
        var noSeg = Losses.MtpLabels(labels, 2, null).data<long>().ToArray();
        Assert.Equal(new long[] { -100, 21, 22, -100 }, noSeg);
    }

    [Fact]
    public void TotalWeighsMtpByLambdaOverDepth()
    {
        var p = new LossParts(tensor(6f), 3, [(tensor(4f), 2)], tensor(0.5f));
        // 6/3 + 0.3/1 * 4/2 + 0.5 = 3.1
        Assert.Equal(3.1, Losses.Total(p, 3, null, 0.3).item<float>(), 5);
    }
}
