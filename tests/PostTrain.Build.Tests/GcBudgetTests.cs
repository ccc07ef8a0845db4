// The test hosts run with a 64 MB gen0 budget (tests/posttrain.runsettings), the mitigation of TorchSharp 0.107's
// implicit-Scalar race (README, "Known issue"); this fails if the run settings stop reaching the test host.
namespace PostTrain.Build.Tests;

public sealed class GcBudgetTests
{
    [Fact]
    public void The_test_host_runs_with_a_64_MB_gen0_budget()
    {
        Assert.Equal("0x4000000", Environment.GetEnvironmentVariable("DOTNET_GCgen0size"));
        // and the runtime honours it: allocating 256 MB of small arrays takes a handful of gen0 collections, not ~100
        int before = GC.CollectionCount(0);
        for (int i = 0; i < 4_000_000; i++) Sink.Keep = new byte[40];
        Assert.InRange(GC.CollectionCount(0) - before, 0, 20);
    }

    private static class Sink
    {
        public static object? Keep;
    }
}
