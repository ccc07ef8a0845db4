// Which grouped FP8 GEMMs a device keeps after its self-check (Fp8Kernels.DecideGemms): under the default "auto" both
// backends may run (wgmma where both weight dimensions are >= 1024, Triton below), so both are checked, and one that
// fails is left out; the GPU runs the same decision with the real self-check as `check`.
using PostTrain.Core.Kernels;
using Choice = PostTrain.Core.Kernels.Fp8Kernels.GemmChoice;

namespace PostTrain.Core.Tests.Kernels;

public sealed class Fp8GemmChoiceTests
{
    private static readonly Choice Auto = new(true, true, Fp8Kernels.WgmmaAutoMinDim);

    // A self-check whose result depends only on the backend (wgmma or not), recording what it was asked to check.
    private static Func<Choice, string?> Check(List<Choice> calls, string? wgmma, string? triton) => c =>
    {
        calls.Add(c);
        return c.Wgmma ? wgmma : triton;
    };

    [Fact]
    public void AutoChecksEveryGemmOnWgmmaThenOnTritonAndKeepsBoth()
    {
        var calls = new List<Choice>();
        var (final, failure, why) = Fp8Kernels.DecideGemms(Auto, Check(calls, null, null));
        Assert.Equal(Auto, final);
        Assert.Null(failure);
        Assert.Null(why);
        Assert.Equal([new Choice(true, true, 0), Choice.Triton], calls);
        Assert.Equal("TMA + wgmma grouped GEMMs, persistent, where both weight dimensions are >= 1024 (Triton below)", final.Label);
    }

    [Fact]
    public void AFailingBackendIsLeftOutWithWhy()
    {
        var (final, failure, why) = Fp8Kernels.DecideGemms(Auto, Check([], null, "GemmKGrouped: off by 3"));
        Assert.Equal(new Choice(true, true, 0), final);   // wgmma for every width
        Assert.Null(failure);
        Assert.Equal("TMA + wgmma grouped GEMMs, persistent; Triton off: self-check failed: GemmKGrouped: off by 3", why);

        (final, failure, why) = Fp8Kernels.DecideGemms(Auto, Check([], "GemmMGrouped: NaN", null));
        Assert.Equal(Choice.Triton, final);
        Assert.Null(failure);
        Assert.Equal("Triton grouped GEMMs; wgmma off: self-check failed: GemmMGrouped: NaN", why);

        (final, failure, why) = Fp8Kernels.DecideGemms(Auto, Check([], "GemmMGrouped: NaN", "QuantRows: 3 differ"));
        Assert.Equal(Choice.Triton, final);
        Assert.Equal("QuantRows: 3 differ", failure);   // the kernels are then off, with this reason
        Assert.Contains("wgmma off: self-check failed: GemmMGrouped: NaN", why);
    }

    [Fact]
    public void OneBackendForEveryWidthIsCheckedOnce()
    {
        var calls = new List<Choice>();
        var persistent = new Choice(true, true);
        Assert.Equal((persistent, (string?)null, (string?)null), Fp8Kernels.DecideGemms(persistent, Check(calls, null, "unused")));
        Assert.Equal([persistent], calls);

        calls.Clear();
        Assert.Equal((Choice.Triton, "GemmKGrouped: shape", (string?)null), Fp8Kernels.DecideGemms(Choice.Triton, Check(calls, null, "GemmKGrouped: shape")));
        Assert.Equal([Choice.Triton], calls);

        calls.Clear();   // the per-tile kernels failing fall back to Triton, which is then checked
        var (final, _, why) = Fp8Kernels.DecideGemms(new Choice(true), Check(calls, "launch failed", null));
        Assert.Equal(Choice.Triton, final);
        Assert.Equal([new Choice(true), Choice.Triton], calls);
        Assert.Equal("Triton grouped GEMMs; wgmma off: self-check failed: launch failed", why);
    }
}
