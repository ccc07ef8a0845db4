// Seeded random LaTeX-ish garbage through Verify and CheckCompletion: the checker must never throw, never
// report an internal error, never overflow the stack, and always stay within its time budget.
using System.Diagnostics;
using PostTrain.Rewards.Math;

namespace PostTrain.Rewards.Tests.Math;

public sealed class FuzzTests
{
    private static readonly string[] Pieces =
    [
        @"\frac", "{", "}", "(", ")", "[", "]", @"\{", @"\}", "^", "_", "1", "23", "0.5", "x", "y", @"\sqrt", "+", "-",
        "*", "/", ",", "=", "<", @"\le", @"\pi", @"\infty", @"\cup", @"\boxed{", "$", "%", "!", "|", @"\sin", @"\log_",
        "i", "e", @"\begin{pmatrix}", @"\end{pmatrix}", "&", @"\\", @"\text{cm}", ".", " ", "10^{10^{10}}", @"\pm",
        @"\approx", "the answer is ", "(B)", @"\left(", @"\right)", "1,000", "3,5", @"\dfrac", @"\in", ":", "'",
    ];

    private static string Garbage(Random rng)
    {
        var n = rng.Next(1, 40);
        return string.Concat(Enumerable.Range(0, n).Select(_ => Pieces[rng.Next(Pieces.Length)]));
    }

    [Fact]
    public void Random_inputs_never_throw_or_stall()
    {
        var rng = new Random(7);
        var options = MathCheckOptions.Default with { Timeout = TimeSpan.FromMilliseconds(250) };
        var worst = 0L;
        for (var k = 0; k < 400; k++)
        {
            var (gold, pred) = (Garbage(rng), Garbage(rng));
            var sw = Stopwatch.StartNew();
            var v1 = MathVerifier.Verify(gold, pred, options);
            var v2 = MathVerifier.CheckCompletion(gold, "Some text " + pred, options);
            var v3 = MathVerifier.Verify(pred, pred, options);
            worst = System.Math.Max(worst, sw.ElapsedMilliseconds);
            foreach (var v in new[] { v1, v2, v3 })
                Assert.False(v.Reason.StartsWith("error", StringComparison.Ordinal), $"'{gold}' vs '{pred}': {v.Reason}");
            // an answer always matches itself, unless the budget ran out or it is empty after cleaning
            Assert.True(v3.Correct || v3.Reason is "timeout" || v3.Reason.StartsWith("too complex", StringComparison.Ordinal)
                        || v3.Reason.StartsWith("unparsed gold:  vs", StringComparison.Ordinal) || v3.Reason == "no answer found",
                $"'{pred}' vs itself: {v3.Reason}");
        }
        Assert.True(worst < 20_000, $"slowest triple took {worst} ms");   // a hang guard: each check stops at its 250 ms budget
    }
}
